DO $normalize$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['products', 'product_prices'] LOOP
        EXECUTE format($sql$COMMENT ON TABLE %I IS %L$sql$, t,
                       CASE t WHEN 'products' THEN 'what we sell; it''s "the catalog"'
                              ELSE 'price changes, newest last' END);
    END LOOP;
    UPDATE products SET title = btrim(title) WHERE title <> btrim(title);
    RAISE NOTICE 'normalized; $$ inside a tagged body is text';
END
$normalize$;

DO $$ BEGIN PERFORM 1; END $$;
