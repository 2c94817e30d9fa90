-- coord:no-transaction
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction; one statement per no-transaction file.
CREATE INDEX CONCURRENTLY IF NOT EXISTS visits_greeting_idx ON visits (greeting_id);
