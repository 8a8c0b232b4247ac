-- Issue 32. Passkeys: the passkeys themselves live in each user's secrets document
-- (auth_user_secrets); these tables hold which user each credential id belongs to (a credential
-- belongs to one user, and a username-less sign-in starts from it) and the ceremonies waiting
-- for the browser's answer (random challenges, single use, gone in minutes).
CREATE TABLE auth_passkeys (
  credential_id text PRIMARY KEY,                                         -- base64url, as the browser sends it
  user_id       text NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE
);
CREATE INDEX auth_passkeys_user ON auth_passkeys (user_id);

CREATE TABLE auth_ceremonies (
  id         text PRIMARY KEY,   -- pkc_… (16 random bytes)
  body       text NOT NULL,      -- the ceremony (JSON): its challenge, kind, user
  expires_at bigint NOT NULL     -- ms since the epoch, on the database's clock
);
CREATE INDEX auth_ceremonies_expiry ON auth_ceremonies (expires_at);
