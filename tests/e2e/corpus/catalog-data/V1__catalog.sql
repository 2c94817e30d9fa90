CREATE TABLE products (
    sku text PRIMARY KEY,
    title text NOT NULL,
    description text,
    price numeric(10,2) NOT NULL CHECK (price >= 0),
    tags text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE product_prices (
    sku text NOT NULL REFERENCES products ON DELETE CASCADE,
    price numeric(10,2) NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT '2020-01-01 00:00:00+00'
);

COMMENT ON TABLE products IS 'what we sell; it''s "the catalog"';
