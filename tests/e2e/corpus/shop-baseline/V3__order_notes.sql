ALTER TABLE shop.orders ADD COLUMN note text;
UPDATE shop.orders SET note = 'first order of ' || c.name
  FROM shop.customers c WHERE c.id = shop.orders.customer_id AND shop.orders.id = 1;
INSERT INTO audit_log (actor, what) VALUES ('migration', 'order notes');
