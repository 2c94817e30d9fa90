-- coord:post-deploy
-- The contract half of an expand/contract change: the release that shipped V1.1
-- (greetings.audience) no longer reads greetings.created_at.  Dropping the column
-- while instances of the previous release still run would break them, so this
-- version waits for `coordctl migrate apply --phase post`, run once every instance
-- runs the new release (`--phase pre` holds it back; `--phase all`, the default,
-- applies everything in version order).
ALTER TABLE greetings DROP COLUMN IF EXISTS created_at;
