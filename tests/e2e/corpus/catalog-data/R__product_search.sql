CREATE OR REPLACE FUNCTION product_search(q text) RETURNS SETOF products
    LANGUAGE sql STABLE
    AS $search$
    SELECT * FROM products
    WHERE lower(title) LIKE '%' || lower(q) || '%'   -- '$$' in a string in a tagged body
    ORDER BY sku;
$search$;
