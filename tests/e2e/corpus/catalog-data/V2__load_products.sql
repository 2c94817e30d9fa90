-- Text format: tabs between columns, backslash escapes, \N for NULL.
COPY products (sku, title, description, price, tags) FROM stdin;
A-1	Widget	It's a "widget"; use it with care	9.99	{tools,"small; cheap"}
A-2	Back\\slash	C:\\Program Files\\Widgets\\.hidden	1.50	{}
A-3	Tab\there	first line\nsecond line	2.00	{"quoted \\"tag\\""}
A-4	No description	\N	0.00	{}
A-5	Dollar $$ and $tag$ and -- dashes	/* not a comment */ ; not the end	3.25	{}
\.

-- CSV: quotes doubled inside quoted fields, commas and newlines inside them, backslashes literal.
COPY products (sku, title, description, price) FROM stdin WITH (FORMAT csv, HEADER true);
sku,title,description,price
B-1,"Gadget, large","He said ""hi""",19.90
B-2,Plain,"C:\temp\new \N is not null here",4.00
B-3,"Multi
line","a field
spanning lines",5.00
B-4,Empty description,,6.00
\.

INSERT INTO product_prices (sku, price) SELECT sku, price FROM products;
