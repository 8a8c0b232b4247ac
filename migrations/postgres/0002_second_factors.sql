-- Second factors and account recovery (issue 22).

-- How a session's user authenticated (RFC 8176 amr, space-separated): 'pwd', or 'pwd otp' after a
-- second factor. Every token of the session carries it; sessions from before this migration are 'pwd'.
ALTER TABLE auth_sessions ADD COLUMN amr text NOT NULL DEFAULT 'pwd';

-- One versioned document per user (src/core/user-secrets.ts): the TOTP factor and its last
-- accepted time step, recovery codes' SHA-256 hashes, an enrollment waiting for confirmation,
-- logins waiting for their second factor, a password-reset code's hash. Changed only by
-- compare-and-set on version; under 2 KiB; deleted with the user.
CREATE TABLE auth_user_secrets (
  user_id text PRIMARY KEY REFERENCES auth_users (id) ON DELETE CASCADE,
  version integer NOT NULL,
  data    text NOT NULL
);
