INSERT INTO shop.customers (name, note) VALUES ('Demo', E'seeded \\ with a backslash and a quote \'')
ON CONFLICT DO NOTHING;
