-- don't forget: quotes in comments are not strings /* it's fine */
CREATE FUNCTION record_price() RETURNS trigger
    LANGUAGE plpgsql
    AS $fn$
BEGIN
    IF NEW.price IS DISTINCT FROM OLD.price THEN
        INSERT INTO product_prices (sku, price, changed_at)
        VALUES (NEW.sku, NEW.price, '2020-01-02 00:00:00+00');  -- $$ is no quote in here
    END IF;
    RETURN NEW;
END
$fn$;

CREATE TRIGGER products_price AFTER UPDATE OF price ON products
    FOR EACH ROW EXECUTE FUNCTION record_price();

UPDATE products SET price = price + 1 WHERE sku = 'A-1';
INSERT INTO products (sku, title, description, price)
    VALUES ('C-1', E'Escaped \'quote\'', E'back\\slash and tab\t', 7.00);
