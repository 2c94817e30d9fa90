-- The first version of the demo schema.
CREATE TABLE greetings (
    id         bigserial PRIMARY KEY,
    language   text NOT NULL UNIQUE,
    text       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE visits (
    id          bigserial PRIMARY KEY,
    greeting_id bigint NOT NULL REFERENCES greetings (id),
    at          timestamptz NOT NULL DEFAULT now()
);
