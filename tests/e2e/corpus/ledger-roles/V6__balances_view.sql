SET ROLE ledger_owner;
CREATE VIEW ledger.balances AS
SELECT a.name, a.balance, count(e.id) AS entries
FROM ledger.accounts a LEFT JOIN ledger.entries e ON e.account_id = a.id
GROUP BY a.id;
RESET ROLE;
