DO $backfill$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT id FROM shop.customers ORDER BY id LOOP
        INSERT INTO audit_log (actor, what)
        VALUES ('backfill', format('customer %s total %s', c.id, shop.customer_total(c.id)));
    END LOOP;
END
$backfill$;
ALTER TYPE shop.order_state ADD VALUE IF NOT EXISTS 'cancelled' AFTER 'shipped';
