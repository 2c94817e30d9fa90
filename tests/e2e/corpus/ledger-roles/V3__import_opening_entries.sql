-- Historical entries: the opening balances below already include them, so the balance
-- trigger must not fire while they load (replica mode skips ordinary triggers).  The
-- setting is not reset here: it ends with the session.
SET session_replication_role = replica;

INSERT INTO ledger.accounts (id, name, balance) VALUES
    (1, 'cash', 150.00),
    (2, 'bank', 1000.00);

INSERT INTO ledger.entries (account_id, amount, memo) VALUES
    (1, 100.00, 'opening'),
    (1, 50.00, 'first sale'),
    (2, 1000.00, 'opening');
