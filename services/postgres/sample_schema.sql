-- The sample schema the embedded PostgreSQL of `mcp-sse up` loads, so the tools have something to show:
-- a tiny shop with varied column types, foreign keys, a check constraint, an index, a view and comments.

CREATE TABLE customers (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    email       text NOT NULL UNIQUE,
    country     char(2) NOT NULL DEFAULT 'FR',
    tags        text[] NOT NULL DEFAULT '{}',
    profile     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE customers IS 'People who placed at least one order.';
COMMENT ON COLUMN customers.profile IS 'Free-form preferences (JSON).';

CREATE TABLE products (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         uuid NOT NULL UNIQUE,
    name        text NOT NULL,
    price       numeric(10, 2) NOT NULL CHECK (price >= 0),
    weight_kg   real,
    active      boolean NOT NULL DEFAULT true,
    thumbnail   bytea
);
COMMENT ON TABLE products IS 'The catalogue.';
COMMENT ON COLUMN products.price IS 'Unit price in euros, VAT included.';

CREATE TABLE orders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     integer NOT NULL REFERENCES customers (id),
    ordered_on      date NOT NULL,
    shipped_at      timestamp,
    delivery_delay  interval,
    note            text
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
COMMENT ON TABLE orders IS 'One row per checkout.';

CREATE TABLE order_items (
    order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id  integer NOT NULL REFERENCES products (id),
    quantity    integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

CREATE VIEW order_totals AS
    SELECT o.id AS order_id, c.name AS customer, sum(i.quantity * p.price) AS total
    FROM orders o
    JOIN customers c ON c.id = o.customer_id
    JOIN order_items i ON i.order_id = o.id
    JOIN products p ON p.id = i.product_id
    GROUP BY o.id, c.name;
COMMENT ON VIEW order_totals IS 'Amount of each order.';

INSERT INTO customers (name, email, country, tags, profile) VALUES
    ('Ada Lovelace', 'ada@example.org', 'GB', '{vip,early}', '{"newsletter": true, "lang": "en"}'),
    ('Émile Zola', 'emile@example.org', 'FR', '{}', '{"newsletter": false}'),
    ('Wu Jian 吴健', 'wu@example.org', 'CN', '{new}', NULL);

INSERT INTO products (sku, name, price, weight_kg, active, thumbnail) VALUES
    ('0f8fad5b-d9cb-469f-a165-70867728950e', 'Notebook', 4.50, 0.3, true, '\x89504e47'),
    ('7c9e6679-7425-40de-944b-e07fc1f90ae7', 'Fountain pen', 32.00, 0.05, true, NULL),
    ('3f2504e0-4f89-11d3-9a0c-0305e82c3301', 'Ink (blue)', 7.25, 0.1, false, NULL);

INSERT INTO orders (customer_id, ordered_on, shipped_at, delivery_delay, note) VALUES
    (1, '2026-10-01', '2026-10-02 09:30:00', '2 days 4 hours', 'gift wrap'),
    (2, '2026-10-15', NULL, NULL, NULL),
    (3, '2026-11-20', '2026-11-21 17:05:00', '1 day', 'leave at the door');

INSERT INTO order_items (order_id, product_id, quantity) VALUES
    (1, 1, 2), (1, 2, 1), (2, 3, 4), (3, 1, 1), (3, 3, 2);

ANALYZE;
