-- Repeatable: re-applied whenever this file changes.
CREATE OR REPLACE VIEW greeting_summary AS
    SELECT g.language, g.text, g.audience, count(v.id) AS visits
    FROM greetings g LEFT JOIN visits v ON v.greeting_id = g.id
    GROUP BY g.language, g.text, g.audience;
