import type { LiveUser, SessionInfo } from '../../core/records.js';
import type { ParsedRefreshToken } from '../../core/refresh-token.js';
import type { CreateSessionResult, NewSession, RotateRequest, RotateResult } from '../../core/session-flows.js';
import { sharedAmr } from '../../core/amr.js';
import type { SessionRecord } from '../store.js';
import { RedisBase, type Args, type RedisClient, type Script } from './base.js';
import { ACTIVE, CLOCK, LIVE_FIELDS, SESSION_KEY } from './lua.js';
import { liveOf, type Reply } from './records.js';

/**
 * KEYS: user, session, sessions. ARGV: now, userGeneration, hash, refreshTtl, maxAge,
 * address, userAgent, maxSessions, grace, sid, amr.
 * Returns {'refused', why} | {'created', now, end, tokenEnd, username, roles, revision}.
 * Ended sessions leave the user's index; past the cap the oldest active one ends.
 */
const CREATE_SESSION = `${CLOCK}${SESSION_KEY}${ACTIVE}
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
const ROTATE = `${CLOCK}${ACTIVE}
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
const REVOKE_BY_TOKEN = `${CLOCK}
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
const LIVE_SESSION = `${CLOCK}${ACTIVE}
local u = redis.call('HMGET', KEYS[1], 'd', 'g', ${LIVE_FIELDS})
if not active(redis.call('HMGET', KEYS[2], 'e', 'te', 'g0'), u, now(), tonumber(ARGV[2])) then return false end
return {u[3], u[4], u[5]}
`;

/**
 * KEYS: user, sessions. ARGV: now, grace. The user's active sessions, newest first, each as
 * {sid, created, lastRefreshed, end, tokenEnd, address, userAgent}; ended ones leave the index.
 */
const LIST_SESSIONS = `${CLOCK}${SESSION_KEY}${ACTIVE}
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

/**
 * KEYS: user, sessions. ARGV: now, grace. The user's active sessions as stored, for a move to
 * another store: {sid, g0, g, h, ph, pr, ps, c, r, e, te, a, ua, m} each (ph, pr, ps may be false).
 */
const EXPORT_SESSIONS = `${CLOCK}${SESSION_KEY}${ACTIVE}
local u = redis.call('HMGET', KEYS[1], 'd', 'g')
local t = now()
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local s = redis.call('HMGET', sessionKey(sid), 'e', 'te', 'g0', 'g', 'h', 'ph', 'pr', 'ps', 'c', 'r', 'a', 'ua', 'm')
  if active(s, u, t, tonumber(ARGV[2])) then
    table.insert(out, {sid, s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[1], s[2], s[11], s[12], s[13]})
  end
end
return out
`;

/** KEYS: user, session, sessions. ARGV: now, grace, sid. Ends an active session of the user; 1 if it did. */
const REVOKE_SESSION = `${CLOCK}${ACTIVE}
if late() then return -1 end
local u = redis.call('HMGET', KEYS[1], 'd', 'g')
if not active(redis.call('HMGET', KEYS[2], 'e', 'te', 'g0'), u, now(), tonumber(ARGV[2])) then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[3])
return 1
`;

/** The commands RedisSessions's scripts add to the client. */
interface Commands {
  authCreateSession(...args: Args): Promise<Reply>;
  authRotate(...args: Args): Promise<Reply>;
  authRevokeByToken(...args: Args): Promise<number>;
  authLiveSession(...args: Args): Promise<Reply | null>;
  authListSessions(...args: Args): Promise<Reply[]>;
  authExportSessions(...args: Args): Promise<Reply[]>;
  authRevokeSession(...args: Args): Promise<number>;
}

const run = (redis: RedisClient) => redis as RedisClient & Commands;

/** Sessions and their refresh tokens: creation under the cap, rotation with re-use detection, liveness, listing. */
export class RedisSessions extends RedisBase {
  static readonly scripts: Record<keyof Commands, Script> = {
    authCreateSession: { keys: 3, lua: CREATE_SESSION },
    authRotate: { keys: 2, lua: ROTATE },
    authRevokeByToken: { keys: 2, lua: REVOKE_BY_TOKEN },
    authLiveSession: { keys: 2, lua: LIVE_SESSION },
    authListSessions: { keys: 2, lua: LIST_SESSIONS },
    authExportSessions: { keys: 2, lua: EXPORT_SESSIONS },
    authRevokeSession: { keys: 3, lua: REVOKE_SESSION },
  };

  async createSession(req: NewSession): Promise<CreateSessionResult> {
    const r = this.notLate(await this.call(() =>
      run(this.redis).authCreateSession(
        this.userKey(req.userId),
        this.sessionKey(req.userId, req.sessionId),
        this.sessionsKey(req.userId),
        this.clockArg(),
        req.userGeneration,
        req.refreshHash,
        req.refreshTtlMs,
        req.sessionMaxAgeMs,
        req.clientAddress,
        req.userAgent,
        this.options.maxSessionsPerUser,
        this.options.accessGraceMs,
        req.sessionId,
        req.amr.join(' '),
      ),
    ));
    if (r[0] === 'refused') return { outcome: 'refused', why: r[1] as 'user_gone' | 'disabled' | 'revoked' };
    const now = Number(r[1]);
    return { outcome: 'created', now, expiresAt: Number(r[2]), refreshExpiresAt: Number(r[3]), authTime: now, amr: req.amr, user: liveOf(req.userId, r, 4) };
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const r = this.notLate(await this.call(() =>
      run(this.redis).authRotate(
        this.userKey(req.userId),
        this.sessionKey(req.userId, req.sessionId),
        this.clockArg(),
        req.generation,
        req.hash,
        req.successorHash,
        req.sealedSuccessor,
        req.refreshTtlMs,
        req.reuseIntervalMs,
        this.options.accessGraceMs,
        req.tagged ? '1' : '',
      ),
    ));
    const session = (at: number) => ({ now: Number(r[1]), expiresAt: Number(r[2]), refreshExpiresAt: Number(r[3]), authTime: Number(r[at]), amr: sharedAmr(String(r[at + 1] ?? '') || 'pwd') });
    switch (r[0]) {
      case 'rotated':
        return { outcome: 'rotated', ...session(7), user: liveOf(req.userId, r, 4) };
      case 'retried':
        return { outcome: 'retried', ...session(8), sealedSuccessor: String(r[4]), user: liveOf(req.userId, r, 5) };
      case 'reused':
        return { outcome: 'reused', sessionId: req.sessionId, userId: req.userId };
      default:
        return { outcome: 'invalid', why: r[1] as 'unknown' | 'expired' | 'revoked' };
    }
  }

  async revokeSessionByRefreshToken(token: ParsedRefreshToken): Promise<{ sessionId: string; userId: string } | undefined> {
    const revoked = this.notLate(await this.call(() => run(this.redis).authRevokeByToken(this.userKey(token.userId), this.sessionKey(token.userId, token.sessionId), this.clockArg(), token.generation, token.hash, token.tagged ? '1' : '')));
    return revoked === 1 ? { sessionId: token.sessionId, userId: token.userId } : undefined;
  }

  async liveSession(userId: string, sessionId: string): Promise<LiveUser | undefined> {
    const r = await this.call(() => run(this.redis).authLiveSession(this.userKey(userId), this.sessionKey(userId, sessionId), this.clockArg(), this.options.accessGraceMs));
    return r === null ? undefined : liveOf(userId, r, 0);
  }

  async listSessions(userId: string): Promise<SessionInfo[]> {
    const rows = await this.call(() => run(this.redis).authListSessions(this.userKey(userId), this.sessionsKey(userId), this.clockArg(), this.options.accessGraceMs));
    return rows.map((r) => ({
      id: String(r[0]),
      userId,
      createdAt: Number(r[1]),
      lastRefreshedAt: Number(r[2]),
      expiresAt: Number(r[3]),
      refreshExpiresAt: Number(r[4]),
      clientAddress: String(r[5] ?? ''),
      userAgent: String(r[6] ?? ''),
    }));
  }

  async exportSessions(userId: string): Promise<SessionRecord[]> {
    const rows = await this.call(() => run(this.redis).authExportSessions(this.userKey(userId), this.sessionsKey(userId), this.clockArg(), this.options.accessGraceMs));
    return rows.map((r) => {
      const [id, g0, g, h, ph, pr, ps, c, last, e, te, a, ua, m] = (r as unknown[]).map((v) => (v === null || v === false || v === undefined ? undefined : String(v)));
      return {
        id: id!,
        userId,
        userGeneration: Number(g0),
        generation: Number(g),
        tokenHash: h!,
        previous: ph !== undefined && pr !== undefined && ps !== undefined ? { hash: ph, rotatedAt: Number(pr), sealed: ps } : undefined,
        createdAt: Number(c),
        lastRefreshedAt: Number(last ?? c),
        expiresAt: Number(e),
        tokenExpiresAt: Number(te),
        clientAddress: a ?? '',
        userAgent: ua ?? '',
        amr: sharedAmr(m || 'pwd'),
      };
    });
  }

  async revokeSession(userId: string, sessionId: string): Promise<boolean> {
    const revoked = this.notLate(await this.call(() =>
      run(this.redis).authRevokeSession(this.userKey(userId), this.sessionKey(userId, sessionId), this.sessionsKey(userId), this.clockArg(), this.options.accessGraceMs, sessionId),
    ));
    return revoked === 1;
  }
}
