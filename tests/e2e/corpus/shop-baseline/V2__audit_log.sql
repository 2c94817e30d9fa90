-- The first migration after the baseline, written as usual: unqualified names, the
-- default search_path.
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT '2020-01-01 00:00:00+00',
    actor text NOT NULL,
    what text NOT NULL
);
INSERT INTO audit_log (actor, what) VALUES ('migration', 'audit log created');
