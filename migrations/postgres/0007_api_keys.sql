-- Issue 33. API keys: an HMAC of each secret (never the secret), its owner (a user or a service
-- account: gone with them, by the sweeper), the roles its tokens may carry, and its expiry.
CREATE TABLE auth_api_keys (
  id           text PRIMARY KEY,          -- apk_… (the id part of the secret)
  owner_id     text NOT NULL,             -- usr_… or sva_…
  name         text NOT NULL,
  roles        text[] NOT NULL,
  hash         text NOT NULL,             -- HMAC-SHA-256 of the secret under AUTH_API_KEY_SECRET, base64url
  created_at   bigint NOT NULL,
  expires_at   bigint NOT NULL,
  owner_generation bigint NOT NULL,         -- the owner's generation when it was made (0: a service account)
  last_used_at bigint
);
CREATE INDEX auth_api_keys_owner ON auth_api_keys (owner_id);
CREATE INDEX auth_api_keys_expiry ON auth_api_keys (expires_at);
