-- Ordinary entries: the trigger updates the balances.
INSERT INTO ledger.entries (account_id, amount, memo) VALUES
    (1, -20.00, 'refund; partial'),
    (2, 250.00, 'transfer in');
