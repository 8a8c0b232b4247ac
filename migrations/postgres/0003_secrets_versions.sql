-- Versions of a user's secrets document never repeat (issue 29): a compare-and-set decided on a
-- deleted user's document can never land on the document of a user made again with that id (a
-- users-file user, an import). Every write takes the next value of one sequence; bigint, since
-- the sequence outgrows integer long before any one document would.
CREATE SEQUENCE auth_user_secrets_version AS bigint;
SELECT setval('auth_user_secrets_version', greatest((SELECT max(version) FROM auth_user_secrets), 1));
ALTER TABLE auth_user_secrets ALTER COLUMN version TYPE bigint;
