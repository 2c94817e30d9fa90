-- Everything here belongs to the owner role.  No RESET ROLE at the end: the next file
-- starts in a fresh session (psql -f), or the tool restores the role (Flyway does).
SET ROLE ledger_owner;

CREATE TABLE ledger.accounts (
    id integer PRIMARY KEY,
    name text NOT NULL UNIQUE,
    balance numeric(14,2) NOT NULL DEFAULT 0
);

CREATE TABLE ledger.entries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id integer NOT NULL REFERENCES ledger.accounts,
    amount numeric(14,2) NOT NULL,
    memo text
);

CREATE FUNCTION ledger.apply_entry() RETURNS trigger
    LANGUAGE plpgsql
    AS $trg$
BEGIN
    -- Keep the balance in step with the entries.
    UPDATE ledger.accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
    RETURN NEW;
END
$trg$;

CREATE TRIGGER entries_apply AFTER INSERT ON ledger.entries
    FOR EACH ROW EXECUTE FUNCTION ledger.apply_entry();
