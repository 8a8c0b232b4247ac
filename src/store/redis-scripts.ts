/**
 * Lua scripts of the Redis store: each decision is one script, so it runs atomically on the
 * server however many instances call it at once. Keys of one session share the hash tag
 * `{<session id>}`, so every script touches one Cluster slot.
 *
 * Key layout (prefix P, default "auth:"):
 *   P{<sid>}:s           hash  session: userId username roles createdAt expiresAt revokedAt
 *   P{<sid>}:t:<hash>    hash  refresh token: expiresAt rotatedAt successor sealed
 *   Pu:{<username>}      string user record (JSON); users do not expire
 *   Pa:{<key>}           hash  login attempts: failures inFlight lastAt expiresAt
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

/** KEYS: session, token. ARGV: now, revokedRetention. Returns the session's userId when the token was the session's, else false. */
export const REVOKE = `
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local s = redis.call('HMGET', KEYS[1], 'expiresAt', 'revokedAt', 'userId')
if not s[1] then return false end
if tonumber(s[2]) == 0 then
  local now = tonumber(ARGV[1])
  redis.call('HSET', KEYS[1], 'revokedAt', now)
  redis.call('PEXPIREAT', KEYS[1], math.min(tonumber(s[1]), now + tonumber(ARGV[2])))
end
return s[3]
`;

/**
 * KEYS: attempts. ARGV: now, freeFailures, baseDelayMs, maxDelayMs, maxFailures, windowMs.
 * Returns 0 when allowed (and records the attempt as in flight), else the time it is allowed at.
 * Mirrors backoffDelay() in store.ts.
 */
export const BEGIN_ATTEMPT = `
local now = tonumber(ARGV[1])
local free, base, maxDelay, maxFailures, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local a = redis.call('HMGET', KEYS[1], 'failures', 'inFlight', 'lastAt', 'expiresAt')
local failures, inFlight, lastAt = 0, 0, 0
if a[1] and now < tonumber(a[4]) then
  failures, inFlight, lastAt = tonumber(a[1]), tonumber(a[2]), tonumber(a[3])
  local n = failures + inFlight
  local delay = 0
  if n >= maxFailures then delay = window
  elseif n >= free then delay = math.min(base * 2 ^ math.min(n - free, 30), maxDelay) end
  if now < lastAt + delay then return lastAt + delay end
end
redis.call('HSET', KEYS[1], 'failures', failures, 'inFlight', inFlight + 1, 'lastAt', now, 'expiresAt', now + window)
redis.call('PEXPIREAT', KEYS[1], now + window)
return 0
`;

/** KEYS: attempts. ARGV: now, windowMs, outcome ('failed' | 'succeeded' | 'released'). */
export const END_ATTEMPT = `
if ARGV[3] == 'succeeded' then
  redis.call('DEL', KEYS[1])
  return 0
end
local a = redis.call('HMGET', KEYS[1], 'failures', 'inFlight')
if not a[1] then return 0 end
if ARGV[3] == 'released' then
  redis.call('HSET', KEYS[1], 'inFlight', math.max(0, tonumber(a[2]) - 1))
  return 0
end
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'failures', tonumber(a[1]) + 1, 'inFlight', math.max(0, tonumber(a[2]) - 1), 'lastAt', now, 'expiresAt', now + tonumber(ARGV[2]))
redis.call('PEXPIREAT', KEYS[1], now + tonumber(ARGV[2]))
return 0
`;
