CREATE FUNCTION shop.customer_total(p_customer integer) RETURNS numeric
    LANGUAGE sql STABLE
    AS $body$
        SELECT coalesce(sum(total), 0) FROM shop.orders WHERE customer_id = p_customer  -- a ';' here: ;
    $body$;

CREATE OR REPLACE FUNCTION shop.recalculate(p_schema text DEFAULT 'shop') RETURNS integer
    LANGUAGE plpgsql
    AS $fn$
DECLARE
    n integer := 0;
    r record;
BEGIN
    FOR r IN EXECUTE format($q$SELECT id FROM %I.customers ORDER BY id$q$, p_schema) LOOP
        n := n + 1;
    END LOOP;
    RAISE NOTICE 'recalculated % customers; $$ and $q$ are just text here', n;
    RETURN n;
END
$fn$;
