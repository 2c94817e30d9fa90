CREATE TABLE IF NOT EXISTS featured (sku text PRIMARY KEY REFERENCES products, blurb text);
COPY featured (sku, blurb) FROM stdin;
A-1	Our "best" widget\\ever
B-1	Large; really
\.
