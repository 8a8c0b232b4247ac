/**
 * Lua scripts of the Redis store, and what they share: each decision is one script, so it runs atomically on the
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
 *                               see RedisBase's last-admin rule); P{admins}:built, once it was filled
 *
 * Time is the store's: every script reads Redis's own clock (TIME) unless the caller passes a
 * time (tests drive the store with a manual clock), so instances whose clocks disagree still
 * order events by one clock. PEXPIREAT only lets Redis forget what is over.
 *
 * Each port's scripts sit in its own file (users.ts, sessions.ts, ...), built from these snippets.
 */

/**
 * ARGV[1] of every script is "<now>;<not after>". `now()`: the time passed, or Redis's own clock
 * when it is empty. `late()`: true when the script runs after "not after", which the caller sets to
 * when it stops waiting for the reply: a write queued behind a stall (a command that timed out is
 * still sent, and runs when Redis comes back) then does nothing, so UNAVAILABLE means "not done".
 */
export const CLOCK = `
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
export const SESSION_KEY = `
local function sessionKey(sid) return string.sub(KEYS[1], 1, -2) .. 's:' .. sid end
`;

/**
 * `active(s, u, now, grace)`: s = HMGET session e te g0, u = HMGET user d g. Active: the user is
 * there and enabled, the session within its end and not idle past its token plus the grace, and
 * not ended by a revoke-all (its generation not behind the user's).
 */
export const ACTIVE = `
local function active(s, u, now, grace)
  if not s[1] or not u[2] then return false end
  if u[1] == '1' then return false end
  if tonumber(s[3]) < tonumber(u[2]) then return false end
  return now < tonumber(s[1]) and now < tonumber(s[2]) + grace
end
`;

/** The live user as scripts return it: username, roles JSON, revision. */
export const LIVE_FIELDS = `'n', 'ro', 'rv'`;

// --- the base's own scripts (base.ts): name claims and deletes on time ------------------

/** KEYS: name. ARGV: user id. Deletes the name only while it still names that user. */
export const RELEASE_NAME = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS: name. ARGV: now, id. SET NX of the name to the id, unless the caller has stopped waiting
 * (a claim is what makes a new user or account visible: one that landed late would hold a name its
 * caller was told was not taken, and the caller's retry would find it taken). 1 claimed, 0 held, -1 late.
 */
export const CLAIM_NAME = `${CLOCK}
if late() then return -1 end
if redis.call('SET', KEYS[1], ARGV[2], 'NX') then return 1 end
return 0
`;

/** KEYS: a key. ARGV: now. DEL of the key: how many keys it deleted, or -1 (nothing deleted) when late. */
export const DELETE_ON_TIME = `${CLOCK}
if late() then return -1 end
return redis.call('DEL', KEYS[1])
`;
