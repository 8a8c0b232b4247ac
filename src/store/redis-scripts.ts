/**
 * Lua scripts of the Redis store: each decision is one script, so it runs atomically on the
 * server however many instances call it at once. Keys of one session share the hash tag
 * `{<session id>}`, so every script touches one Cluster slot.
 *
 * Key layout (prefix P, default "auth:"):
 *   P{<sid>}:s           hash  session: userId username roles createdAt expiresAt revokedAt
 *   P{<sid>}:t:<hash>    hash  refresh token: expiresAt rotatedAt successor sealed
 *   Pu:{<username>}      string user record (JSON); users do not expire
 *   Pf:{<key>}           hash  failure counter: count lastAt expiresAt
 * Times are milliseconds passed in by the caller; PEXPIREAT only lets Redis forget what is over.
 */

/** The successor's key: the presented token's key with its hash swapped. */
const SUCCESSOR_KEY = `local succKey = string.sub(KEYS[1], 1, -2) .. 't:' .. t[3]`;

/**
 * KEYS: session, presented token, new successor. ARGV: now, refreshTtl, reuseInterval,
 * successorHash, sealed, revokedRetention.
 * Returns {outcome, ...}: {'invalid', why} | {'reused', userId} | {'retried', expiresAt, sealed, session...}
 * | {'rotated', expiresAt, session...}; session... = userId username roles createdAt expiresAt.
 */
export const ROTATE = `
local s = redis.call('HMGET', KEYS[1], 'userId', 'username', 'roles', 'createdAt', 'expiresAt', 'revokedAt')
local t = redis.call('HMGET', KEYS[2], 'expiresAt', 'rotatedAt', 'successor', 'sealed')
if not s[5] or not t[1] then return {'invalid', 'unknown'} end
local now = tonumber(ARGV[1])
if tonumber(s[6]) ~= 0 then return {'invalid', 'revoked'} end
local sessionEnd = tonumber(s[5])
if now >= sessionEnd or now >= tonumber(t[1]) then return {'invalid', 'expired'} end
local rotatedAt = tonumber(t[2])
if rotatedAt ~= 0 then
  ${SUCCESSOR_KEY}
  local succ = redis.call('HMGET', succKey, 'rotatedAt', 'expiresAt')
  if now - rotatedAt <= tonumber(ARGV[3]) and succ[1] == '0' then
    return {'retried', succ[2], t[4], s[1], s[2], s[3], s[4], s[5]}
  end
  redis.call('HSET', KEYS[1], 'revokedAt', now)
  redis.call('PEXPIREAT', KEYS[1], math.min(sessionEnd, now + tonumber(ARGV[6])))
  return {'reused', s[1]}
end
local expiresAt = math.min(now + tonumber(ARGV[2]), sessionEnd)
redis.call('HSET', KEYS[2], 'rotatedAt', now, 'successor', ARGV[4], 'sealed', ARGV[5])
redis.call('HSET', KEYS[3], 'expiresAt', expiresAt, 'rotatedAt', 0)
redis.call('PEXPIREAT', KEYS[3], expiresAt)
return {'rotated', expiresAt, s[1], s[2], s[3], s[4], s[5]}
`;

/** KEYS: session, token. ARGV: now, revokedRetention. Returns 1 when the token was the session's. */
export const REVOKE = `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local s = redis.call('HMGET', KEYS[1], 'expiresAt', 'revokedAt')
if not s[1] then return 0 end
if tonumber(s[2]) == 0 then
  local now = tonumber(ARGV[1])
  redis.call('HSET', KEYS[1], 'revokedAt', now)
  redis.call('PEXPIREAT', KEYS[1], math.min(tonumber(s[1]), now + tonumber(ARGV[2])))
end
return 1
`;

/** KEYS: counter. ARGV: now, ttl. Returns {count, lastAt}. */
export const RECORD_FAILURE = `
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'count', 'expiresAt')
local count = 1
if f[1] and now < tonumber(f[2]) then count = tonumber(f[1]) + 1 end
local expiresAt = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'count', count, 'lastAt', now, 'expiresAt', expiresAt)
redis.call('PEXPIREAT', KEYS[1], expiresAt)
return {count, now}
`;
