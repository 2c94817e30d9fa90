-- Built without blocking writes on a large table; no directive: coord must see
-- that CREATE INDEX CONCURRENTLY cannot run in a transaction.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_state_idx ON shop.orders (state);
