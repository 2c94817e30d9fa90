CREATE OR REPLACE VIEW shop.customer_summary AS
SELECT c.id, c.name, count(o.id) AS orders, shop.customer_total(c.id) AS total
FROM shop.customers c LEFT JOIN shop.orders o ON o.customer_id = c.id
GROUP BY c.id, c.name;
