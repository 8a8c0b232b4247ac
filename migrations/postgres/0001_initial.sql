-- grpc-auth schema, version 1: everything a deployment holds, on PostgreSQL alone.
--
-- Applied by the service at start (AUTH_DATABASE_MIGRATE=auto) or by `grpc-auth migrate`, in one
-- transaction under an advisory lock; auth_schema_migrations records it. Never edit a migration
-- that has shipped: add the next one.
--
-- Times are milliseconds since the Unix epoch (bigint), on the database's clock: every instance
-- orders shared events by that one clock. Names sort by bytes (COLLATE "C"): ListUsers pages by
-- keyset on the unique index, so a page costs the same at a thousand users and at a million.

CREATE TABLE auth_users (
  id                  text PRIMARY KEY,                -- usr_… (16 random bytes)
  username            text COLLATE "C" NOT NULL UNIQUE, -- NFKC, lower case
  skeleton            text COLLATE "C" UNIQUE,          -- UTS 39 skeleton claimed at creation (NULL: none)
  password_hash       text NOT NULL,                    -- argon2id PHC string
  roles               text[] NOT NULL,
  disabled            boolean NOT NULL,
  generation          integer NOT NULL,                 -- bumped by revoke-all: older sessions are inactive
  revision            integer NOT NULL,                 -- bumped by every change
  origin              text NOT NULL CHECK (origin IN ('api', 'file')),
  file_digest         text,
  created_at          bigint NOT NULL,
  password_changed_at bigint NOT NULL
);
-- The last-admin rule looks for another enabled admin ('admin' is ADMIN_ROLE in src/core/accounts.ts).
CREATE INDEX auth_users_enabled_admins ON auth_users (id) WHERE NOT disabled AND 'admin' = ANY (roles);
CREATE INDEX auth_users_from_file ON auth_users (id) WHERE origin = 'file';

CREATE TABLE auth_sessions (
  id                  text PRIMARY KEY,                 -- ses_…
  seq                 bigserial NOT NULL,               -- creation order (listing, "oldest ends first")
  user_id             text NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
  user_generation     integer NOT NULL,                 -- the user's generation it belongs to
  generation          integer NOT NULL,                 -- of the current refresh token
  token_hash          text NOT NULL,                    -- SHA-256 of the current refresh token's secret
  previous_hash       text,                             -- the token rotated last, for the reuse interval
  previous_rotated_at bigint,
  previous_sealed     text,                             -- its successor, sealed under it
  created_at          bigint NOT NULL,
  last_refreshed_at   bigint NOT NULL,
  expires_at          bigint NOT NULL,                  -- absolute end
  token_expires_at    bigint NOT NULL,                  -- the current refresh token's idle end
  purge_at            bigint NOT NULL,                  -- when nothing of it can be valid: the sweeper deletes it
  client_address      text NOT NULL,
  user_agent          text NOT NULL
);
CREATE INDEX auth_sessions_by_user ON auth_sessions (user_id, seq);
CREATE INDEX auth_sessions_by_purge ON auth_sessions (purge_at);

CREATE TABLE auth_service_accounts (
  id          text PRIMARY KEY,                         -- sva_…
  name        text COLLATE "C" NOT NULL UNIQUE,
  roles       text[] NOT NULL,
  disabled    boolean NOT NULL,
  created_at  bigint NOT NULL,
  revision    integer NOT NULL,
  credentials jsonb NOT NULL                            -- at most 10: secrets as SHA-256, public keys, certificate thumbprints
);
CREATE INDEX auth_service_accounts_enabled_admins ON auth_service_accounts (id) WHERE NOT disabled AND 'admin' = ANY (roles);

-- RFC 7523 assertion ids, kept until the assertion's exp (at most 5 minutes ahead) so a replay is refused.
CREATE TABLE auth_assertions (
  account_id text NOT NULL,
  jti        text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (account_id, jti)
);
CREATE INDEX auth_assertions_by_expiry ON auth_assertions (expires_at);

-- Login throttle counters: keys are digests and client addresses, never a raw username.
CREATE TABLE auth_attempts (
  key             text PRIMARY KEY,
  failures        integer NOT NULL,
  in_flight       integer NOT NULL,
  last_failure_at bigint NOT NULL,
  expires_at      bigint NOT NULL
);
CREATE INDEX auth_attempts_by_expiry ON auth_attempts (expires_at);

-- Fixed-window registration counters (per client address, and overall).
CREATE TABLE auth_rate_windows (
  key     text PRIMARY KEY,
  count   integer NOT NULL,
  ends_at bigint NOT NULL
);
CREATE INDEX auth_rate_windows_by_end ON auth_rate_windows (ends_at);

-- One row, locked by every change that may take the admin role away, so two such changes on two
-- instances are decided one after the other (the last-admin rule).
CREATE TABLE auth_admin_guard (
  id integer PRIMARY KEY CHECK (id = 1)
);
INSERT INTO auth_admin_guard (id) VALUES (1);
