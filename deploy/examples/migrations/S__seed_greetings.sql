-- Seed data, run under the same lock after the migrations (skip with --no-seed).
INSERT INTO greetings (language, text) VALUES
    ('en', 'Hello'), ('fr', 'Bonjour'), ('de', 'Hallo')
ON CONFLICT (language) DO NOTHING;
