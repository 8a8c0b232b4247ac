/**
 * Lua scripts of the Redis store: each decision is one script, so it runs atomically on the
 * server however many instances call it at once. A user's keys share the hash tag `{<user id>}`
 * (one Cluster slot), so every per-user operation, revoke-all and role change included, is one
 * script on one slot, wherever the user's sessions were made.
 *
 * Key layout (prefix P, default "auth:"):
 *   P{<uid>}:u           hash   user: n(ame) ph(password hash) ro(les JSON) c(reated) pc(password changed)
 *                               d(isabled 0/1) g(eneration) rv (revision) o(rigin) fd (file digest)
 *                               k (the skeleton it claimed)
 *   P{<uid>}:s:<sid>     hash   session: g0 (user generation) g (token generation) h (token hash)
 *                               e (end) te (token end) c (created) r (last refreshed) a (address)
 *                               ua (user agent) ph pr ps (previous token: hash, rotated at, sealed successor)
 *   P{<uid>}:ss          zset   the user's sessions by creation time
 *   Pn:{<username>}      string the user id of a username
 *   Pk:{<skeleton>}      string the user id holding a look of a username (see usernameSkeleton)
 *   Pusers               zset   "<username>\0<user id>", score 0: users in username order
 *   Pa:{<key>}           hash   login attempts: f(ailures) i(n flight) l(ast failure) x (expires)
 *   Phealth              string written by every health check (proves writes work); expires in 60 s
 *   P{admins}:set        set    ids of enabled admins, users and service accounts (a subset of them:
 *                               see RedisStore's last-admin rule); P{admins}:built, once it was filled
 *
 * Time is the store's: every script reads Redis's own clock (TIME) unless the caller passes a
 * time (tests drive the store with a manual clock), so instances whose clocks disagree still
 * order events by one clock. PEXPIREAT only lets Redis forget what is over.
 */

/**
 * ARGV[1] of every script is "<now>;<not after>". `now()`: the time passed, or Redis's own clock
 * when it is empty. `late()`: true when the script runs after "not after", which the caller sets to
 * when it stops waiting for the reply: a write queued behind a stall (a command that timed out is
 * still sent, and runs when Redis comes back) then does nothing, so UNAVAILABLE means "not done".
 */
const CLOCK = `
local clockArg = ARGV[1]
local sep = string.find(clockArg, ';', 1, true)
local fixedNow = tonumber(string.sub(clockArg, 1, sep - 1))
local notAfter = tonumber(string.sub(clockArg, sep + 1))
local function now()
  if fixedNow then return fixedNow end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function late() return notAfter ~= nil and now() > notAfter end
`;

/** `sessionKey(sid)`: a session of the user whose user key is KEYS[1] (same hash tag, same slot). */
const SESSION_KEY = `
local function sessionKey(sid) return string.sub(KEYS[1], 1, -2) .. 's:' .. sid end
`;

/**
 * `active(s, u, now, grace)`: s = HMGET session e te g0, u = HMGET user d g. Active: the user is
 * there and enabled, the session within its end and not idle past its token plus the grace, and
 * not ended by a revoke-all (its generation not behind the user's).
 */
const ACTIVE = `
local function active(s, u, now, grace)
  if not s[1] or not u[2] then return false end
  if u[1] == '1' then return false end
  if tonumber(s[3]) < tonumber(u[2]) then return false end
  return now < tonumber(s[1]) and now < tonumber(s[2]) + grace
end
`;

/** The live user as scripts return it: username, roles JSON, revision. */
const LIVE_FIELDS = `'n', 'ro', 'rv'`;

/** KEYS: user. ARGV: now, id, username, passwordHash, roles, disabled, origin, fileDigest, skeleton. Returns 1 when created, 0 when the id exists. */
export const CREATE_USER = `${CLOCK}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = now()
redis.call('HSET', KEYS[1], 'n', ARGV[3], 'ph', ARGV[4], 'ro', ARGV[5], 'd', ARGV[6], 'o', ARGV[7], 'fd', ARGV[8], 'c', t, 'pc', t, 'g', 0, 'rv', 1)
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'k', ARGV[9]) end
return 1
`;

/** KEYS: name. ARGV: user id. Deletes the name only while it still names that user. */
export const RELEASE_NAME = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS: user, kept session (or the user key again). ARGV: now, ifRevision ('' = any), roles ('' =
 * keep), passwordHash ('' = keep), disabled ('' = keep), revoke ('1' = every session ends),
 * fileDigest ('' = keep).
 * Returns 'not_found' | 'conflict' | the user's fields (HGETALL).
 */
export const UPDATE_USER = `${CLOCK}
if late() then return 'late' end
local u = redis.call('HMGET', KEYS[1], 'rv', 'g')
if not u[1] then return 'not_found' end
if ARGV[2] ~= '' and ARGV[2] ~= u[1] then return 'conflict' end
local g = tonumber(u[2])
if ARGV[6] == '1' then g = g + 1 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'ro', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'ph', ARGV[4], 'pc', now()) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'd', ARGV[5]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'fd', ARGV[7]) end
redis.call('HSET', KEYS[1], 'g', g, 'rv', tonumber(u[1]) + 1)
-- The calling session moves to the new generation in the same step: it never lapses.
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'g0', g) end
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS: user, sessions. Deletes the user and every session; returns the username, or false. */
export const DELETE_USER = `${SESSION_KEY}
local name = redis.call('HGET', KEYS[1], 'n')
if not name then return false end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do redis.call('DEL', sessionKey(sid)) end
redis.call('DEL', KEYS[1], KEYS[2], string.sub(KEYS[1], 1, -2) .. 'x')
return name
`;

/**
 * KEYS: user, secrets. ARGV: clock, ifVersion, data ('' deletes). Compare-and-set of the user's
 * secrets document {v, d}: 'written', 'conflict', 'user_gone', or 'late'. The new version is
 * Redis's clock in microseconds (or one past the old, if larger): a document made again for a
 * deleted user's id starts past every version the old one had. Below 2^53, so exact in Lua.
 */
export const WRITE_SECRETS = `${CLOCK}
if late() then return 'late' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'user_gone' end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if v ~= tonumber(ARGV[2]) then return 'conflict' end
if ARGV[3] == '' then redis.call('DEL', KEYS[2]) return 'written' end
local t = redis.call('TIME')
local next = math.max(v + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
redis.call('HSET', KEYS[2], 'v', string.format('%.0f', next), 'd', ARGV[3])
return 'written'
`;

/**
 * KEYS: user, session, sessions. ARGV: now, userGeneration, hash, refreshTtl, maxAge,
 * address, userAgent, maxSessions, grace, sid, amr.
 * Returns {'refused', why} | {'created', now, end, tokenEnd, username, roles, revision}.
 * Ended sessions leave the user's index; past the cap the oldest active one ends.
 */
export const CREATE_SESSION = `${CLOCK}${SESSION_KEY}${ACTIVE}
if late() then return {'late'} end
local u = redis.call('HMGET', KEYS[1], 'd', 'g', ${LIVE_FIELDS})
if not u[2] then return {'refused', 'user_gone'} end
if u[1] == '1' then return {'refused', 'disabled'} end
if tonumber(u[2]) > tonumber(ARGV[2]) then return {'refused', 'revoked'} end
local t = now()
local grace = tonumber(ARGV[9])
local live = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local key = sessionKey(sid)
  if active(redis.call('HMGET', key, 'e', 'te', 'g0'), u, t, grace) then
    table.insert(live, key)
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[3], sid)
  end
end
if #live >= tonumber(ARGV[8]) then
  redis.call('DEL', live[1])
  redis.call('ZREM', KEYS[3], string.match(live[1], '.*:s:(.*)$'))
end
local e = t + tonumber(ARGV[5])
local te = math.min(t + tonumber(ARGV[4]), e)
redis.call('HSET', KEYS[2], 'g0', u[2], 'g', 0, 'h', ARGV[3], 'e', e, 'te', te, 'c', t, 'r', t, 'a', ARGV[6], 'ua', ARGV[7], 'm', ARGV[11])
redis.call('PEXPIREAT', KEYS[2], math.min(e, te + grace))
redis.call('ZADD', KEYS[3], t, ARGV[10])
if redis.call('PEXPIRETIME', KEYS[3]) < e then redis.call('PEXPIREAT', KEYS[3], e) end
return {'created', t, e, te, u[3], u[4], u[5]}
`;

/**
 * KEYS: user, session. ARGV: now, generation, hash, successorHash, sealed, refreshTtl,
 * reuseInterval, grace, tagged ('1' when the token's tag verified: only then can it prove re-use).
 * Returns {'invalid', why} | {'reused'} | {'retried', now, end, tokenEnd, sealed, username, roles, revision, created, amr}
 * | {'rotated', now, end, tokenEnd, username, roles, revision, created, amr}.
 */
export const ROTATE = `${CLOCK}${ACTIVE}
if late() then return {'late'} end
local s = redis.call('HMGET', KEYS[2], 'e', 'te', 'g0', 'g', 'h', 'ph', 'pr', 'ps', 'c', 'm')
local u = redis.call('HMGET', KEYS[1], 'd', 'g', ${LIVE_FIELDS})
if not s[1] then return {'invalid', 'unknown'} end
local t = now()
if not active(s, u, t, tonumber(ARGV[8])) then
  if not u[2] or u[1] == '1' or tonumber(s[3]) < tonumber(u[2]) then return {'invalid', 'revoked'} end
  return {'invalid', 'expired'}
end
local presented, current = tonumber(ARGV[2]), tonumber(s[4])
if presented == current then
  if ARGV[3] ~= s[5] then return {'invalid', 'unknown'} end
  if t >= tonumber(s[2]) then return {'invalid', 'expired'} end
  local te = math.min(t + tonumber(ARGV[6]), tonumber(s[1]))
  redis.call('HSET', KEYS[2], 'g', current + 1, 'h', ARGV[4], 'te', te, 'r', t, 'ph', ARGV[3], 'pr', t, 'ps', ARGV[5])
  redis.call('PEXPIREAT', KEYS[2], math.min(tonumber(s[1]), te + tonumber(ARGV[8])))
  return {'rotated', t, s[1], te, u[3], u[4], u[5], s[9], s[10] or 'pwd'}
end
if presented > current then return {'invalid', 'unknown'} end
if presented == current - 1 and s[7] and t - tonumber(s[7]) <= tonumber(ARGV[7]) then
  if ARGV[3] ~= s[6] then return {'invalid', 'unknown'} end
  return {'retried', t, s[1], s[2], s[8], u[3], u[4], u[5], s[9], s[10] or 'pwd'}
end
if ARGV[9] ~= '1' then return {'invalid', 'unknown'} end
redis.call('DEL', KEYS[2])
redis.call('ZREM', string.sub(KEYS[1], 1, -2) .. 'ss', string.match(KEYS[2], '.*:s:(.*)$'))
return {'reused'}
`;

/** KEYS: user, session. ARGV: clock, generation, hash, tagged. Ends the session of a token it issued; 1 if it did, -1 when late. */
export const REVOKE_BY_TOKEN = `${CLOCK}
if late() then return -1 end
local s = redis.call('HMGET', KEYS[2], 'g', 'h')
if not s[1] then return 0 end
local g = tonumber(ARGV[2])
if g > tonumber(s[1]) or (g == tonumber(s[1]) and ARGV[3] ~= s[2]) or (g < tonumber(s[1]) and ARGV[4] ~= '1') then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', string.sub(KEYS[1], 1, -2) .. 'ss', string.match(KEYS[2], '.*:s:(.*)$'))
return 1
`;

/** KEYS: user, session. ARGV: now, grace. The live user {username, roles, revision}, or false. */
export const LIVE_SESSION = `${CLOCK}${ACTIVE}
local u = redis.call('HMGET', KEYS[1], 'd', 'g', ${LIVE_FIELDS})
if not active(redis.call('HMGET', KEYS[2], 'e', 'te', 'g0'), u, now(), tonumber(ARGV[2])) then return false end
return {u[3], u[4], u[5]}
`;

/**
 * KEYS: user, sessions. ARGV: now, grace. The user's active sessions, newest first, each as
 * {sid, created, lastRefreshed, end, tokenEnd, address, userAgent}; ended ones leave the index.
 */
export const LIST_SESSIONS = `${CLOCK}${SESSION_KEY}${ACTIVE}
local u = redis.call('HMGET', KEYS[1], 'd', 'g')
local t = now()
local out = {}
for _, sid in ipairs(redis.call('ZREVRANGE', KEYS[2], 0, -1)) do
  local key = sessionKey(sid)
  local s = redis.call('HMGET', key, 'e', 'te', 'g0', 'c', 'r', 'a', 'ua')
  if active(s, u, t, tonumber(ARGV[2])) then
    table.insert(out, {sid, s[4], s[5], s[1], s[2], s[6], s[7]})
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], sid)
  end
end
return out
`;

/** KEYS: user, session, sessions. ARGV: now, grace, sid. Ends an active session of the user; 1 if it did. */
export const REVOKE_SESSION = `${CLOCK}${ACTIVE}
if late() then return -1 end
local u = redis.call('HMGET', KEYS[1], 'd', 'g')
if not active(redis.call('HMGET', KEYS[2], 'e', 'te', 'g0'), u, now(), tonumber(ARGV[2])) then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[3])
return 1
`;

/** The back-off of a count, as backoffDelay() in core/login-throttle.ts. ARGV[2..6]: free, base, maxDelay, maxFailures, window. */
const BACKOFF = `
local function backoff(n)
  local free, base, maxDelay, maxFailures, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  if n >= maxFailures then return window end
  if n < free then return 0 end
  return math.min(base * 2 ^ math.min(n - free, 30), maxDelay)
end
local function keep(failures)
  if failures >= tonumber(ARGV[2]) then return tonumber(ARGV[6]) end
  return tonumber(ARGV[7])
end
`;

/**
 * KEYS: attempts. ARGV: now, free, base, maxDelay, maxFailures, window, shortWindow, mode
 * ('check' | 'begin'). Returns 0 when allowed (a begin records the attempt in flight), else the
 * milliseconds to wait. 'check' counts failures only and writes nothing.
 */
export const BEGIN_ATTEMPT = `${CLOCK}${BACKOFF}
local t = now()
local a = redis.call('HMGET', KEYS[1], 'f', 'i', 'l', 'x')
local failures, inFlight, last = 0, 0, t
if a[1] and t < tonumber(a[4]) then failures, inFlight, last = tonumber(a[1]), tonumber(a[2]), tonumber(a[3]) end
local n = failures
if ARGV[8] == 'begin' then n = failures + inFlight end
local retryAt = last + backoff(n)
if n > 0 and t < retryAt then return retryAt - t end
if ARGV[8] == 'check' then return 0 end
redis.call('HSET', KEYS[1], 'f', failures, 'i', inFlight + 1, 'l', last, 'x', t + tonumber(ARGV[6]))
redis.call('PEXPIREAT', KEYS[1], t + tonumber(ARGV[6]))
return 0
`;

/**
 * KEYS: attempts. ARGV: now, free, base, maxDelay, maxFailures, window, shortWindow, outcome
 * ('failed' | 'succeeded' | 'released' | 'record', a failure with nothing in flight).
 */
export const END_ATTEMPT = `${CLOCK}${BACKOFF}
if ARGV[8] == 'succeeded' then
  redis.call('DEL', KEYS[1])
  return 0
end
local t = now()
local a = redis.call('HMGET', KEYS[1], 'f', 'i', 'x')
local failures, inFlight = 0, 0
if a[1] and t < tonumber(a[3]) then failures, inFlight = tonumber(a[1]), tonumber(a[2]) end
if ARGV[8] ~= 'record' then inFlight = math.max(0, inFlight - 1) end
if ARGV[8] == 'released' then
  if not a[1] then return 0 end
  if failures == 0 and inFlight == 0 then redis.call('DEL', KEYS[1]) else redis.call('HSET', KEYS[1], 'i', inFlight) end
  return 0
end
failures = failures + 1
local x = t + keep(failures)
redis.call('HSET', KEYS[1], 'f', failures, 'i', inFlight, 'l', t, 'x', x)
redis.call('PEXPIREAT', KEYS[1], x)
return 0
`;

/*
 * Service accounts, one hash per account under the hash tag `{<service account id>}`:
 *   P{<sva>}:a           hash   n(ame) ro(les JSON) d(isabled) c(reated) rv (revision),
 *                               and cr:<credential id> = the credential as JSON
 *   P{<sva>}:j:<jti>     string an assertion's jti, kept until the assertion expires
 *   Pn:sa:{<name>}       string the id of a service account name
 *   Psas                 zset   "<name>\0<id>", score 0: accounts in name order
 */

/** KEYS: account. ARGV: now, name, roles, credentialId, credential JSON. 1 when created, 0 when the id exists. */
export const CREATE_SERVICE_ACCOUNT = `${CLOCK}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = now()
local c = cjson.decode(ARGV[5])
c.createdAt = t
redis.call('HSET', KEYS[1], 'n', ARGV[2], 'ro', ARGV[3], 'd', '0', 'c', t, 'rv', 1, 'cr:' .. ARGV[4], cjson.encode(c))
return 1
`;

/**
 * KEYS: account. ARGV: now, roles ('' = keep), disabled ('' = keep), maxCredentials, credential to
 * add (JSON, '' = none), credential id to remove ('' = none), its type.
 * Returns 'not_found' | 'no_such_credential' | 'too_many_credentials' | 'credential_exists' |
 * 'kid_taken' (another key declares the kid) | HGETALL. A key stored before kids were kept has
 * no thumbprint: its kid is its thumbprint.
 */
export const UPDATE_SERVICE_ACCOUNT = `${CLOCK}
if late() then return 'late' end
local rv = redis.call('HGET', KEYS[1], 'rv')
if not rv then return 'not_found' end
if ARGV[6] ~= '' then
  local c = redis.call('HGET', KEYS[1], 'cr:' .. ARGV[6])
  if not c or cjson.decode(c).type ~= ARGV[7] then return 'no_such_credential' end
  redis.call('HDEL', KEYS[1], 'cr:' .. ARGV[6])
end
if ARGV[5] ~= '' then
  local added = cjson.decode(ARGV[5])
  local count = 0
  local kidTaken = false
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 3) == 'cr:' then
      count = count + 1
      local c = cjson.decode(redis.call('HGET', KEYS[1], field))
      if added.thumbprint and c.type == added.type and (c.thumbprint or c.kid) == added.thumbprint then return 'credential_exists' end
      if c.type == 'key' and added.type == 'key' and c.kid == added.kid then kidTaken = true end
    end
  end
  if count >= tonumber(ARGV[4]) then return 'too_many_credentials' end
  if kidTaken then return 'kid_taken' end
  added.createdAt = now()
  redis.call('HSET', KEYS[1], 'cr:' .. added.id, cjson.encode(added))
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'ro', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'd', ARGV[3]) end
redis.call('HSET', KEYS[1], 'rv', tonumber(rv) + 1)
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS: account. ARGV: credential id. {name, roles, revision} of an enabled account that holds the credential, or false. */
export const LIVE_CREDENTIAL = `
local a = redis.call('HMGET', KEYS[1], 'n', 'ro', 'd', 'rv', 'cr:' .. ARGV[1])
if not a[1] or a[3] == '1' or not a[5] then return false end
return {a[1], a[2], a[4]}
`;

/** KEYS: jti. ARGV: now, expiresAt. 1 when the jti is new (and is kept until expiresAt), 0 for a replay. */
export const USE_ASSERTION = `${CLOCK}
local ttl = tonumber(ARGV[2]) - now()
if ttl <= 0 then return 0 end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ttl) then return 1 end
return 0
`;

/**
 * KEYS: counter base. ARGV: now, limit, windowMs. A fixed window on the store's clock: the key of
 * the current window counts hits and expires with it. Returns 0 when allowed, else ms to wait.
 */
export const HIT_RATE = `${CLOCK}
local t = now()
local w = tonumber(ARGV[3])
local start = math.floor(t / w) * w
local key = KEYS[1] .. ':' .. start
local n = redis.call('INCR', key)
if n == 1 then redis.call('PEXPIREAT', key, start + w) end
if n > tonumber(ARGV[2]) then return start + w - t end
return 0
`;

/**
 * KEYS: the admin set. ARGV: id. Takes `id` out of the set of enabled admins unless it is the
 * only one: 'removed' | 'absent' (not in it) | 'last' (refused, nothing changed).
 */
export const LEAVE_ADMINS = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 'absent' end
if redis.call('SCARD', KEYS[1]) <= 1 then return 'last' end
redis.call('SREM', KEYS[1], ARGV[1])
return 'removed'
`;
