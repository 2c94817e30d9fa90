CREATE OR REPLACE FUNCTION ledger.report(p_account integer)
    RETURNS TABLE (memo text, amount numeric)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = ledger, pg_temp
    AS $report$
BEGIN
    RETURN QUERY SELECT e.memo, e.amount FROM entries e WHERE e.account_id = p_account ORDER BY e.id;
END
$report$;
REVOKE ALL ON FUNCTION ledger.report(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.report(integer) TO ledger_reader;
