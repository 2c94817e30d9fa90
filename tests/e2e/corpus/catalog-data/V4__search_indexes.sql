-- Built while the application writes: no transaction, no directive.
CREATE INDEX CONCURRENTLY products_title_idx ON products (lower(title));
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS product_prices_sku_changed_idx
    ON product_prices (sku, changed_at);
