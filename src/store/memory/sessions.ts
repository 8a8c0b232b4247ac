import type { LiveUser, SessionInfo } from '../../core/records.js';
import type { ParsedRefreshToken } from '../../core/refresh-token.js';
import type { CreateSessionResult, NewSession, RotateRequest, RotateResult } from '../../core/session-flows.js';
import { sharedAmr } from '../../core/amr.js';
import type { SessionRecord } from '../store.js';
import { MemoryBase } from './base.js';
import { SessionEntry } from './records.js';

/** Sessions and their refresh tokens: creation under the cap, rotation with re-use detection, liveness. */
export class MemorySessions extends MemoryBase {
  async createSession(req: NewSession): Promise<CreateSessionResult> {
    const user = this.byId.get(req.userId);
    if (!user) return { outcome: 'refused', why: 'user_gone' };
    if (user.record.disabled) return { outcome: 'refused', why: 'disabled' };
    if (user.record.generation > req.userGeneration) return { outcome: 'refused', why: 'revoked' };
    const now = this.now();
    // Ended sessions leave the user's list here; past the cap the oldest active one ends.
    let active = 0;
    let oldest: SessionEntry | undefined;
    this.pruneSessions(user, now, (s) => {
      active++;
      oldest = s;
    });
    if (active >= this.options.maxSessionsPerUser && oldest) this.removeSession(oldest);
    const expiresAt = now + req.sessionMaxAgeMs;
    const session = new SessionEntry(
      req.sessionId,
      user,
      user.record.generation,
      this.seenOf(req.clientAddress, req.userAgent),
      req.refreshHash,
      now,
      expiresAt,
      Math.min(now + req.refreshTtlMs, expiresAt),
      sharedAmr(req.amr.join(' ')),
    );
    session.next = user.head;
    user.head = session;
    this.sessions.set(req.sessionId, session);
    return { outcome: 'created', user: user.record, ...session.times(now) };
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const now = this.now();
    const session = this.sessionOf(req.userId, req.sessionId);
    if (!session) return { outcome: 'invalid', why: 'unknown' };
    if (!session.active(now, this.options.accessGraceMs)) {
      const user = session.user;
      return { outcome: 'invalid', why: user.deleted || user.record.disabled || session.userGeneration < user.record.generation ? 'revoked' : 'expired' };
    }
    if (req.generation === session.generation) {
      if (req.hash !== session.tokenHash) return { outcome: 'invalid', why: 'unknown' };
      if (now >= session.tokenExpiresAt) return { outcome: 'invalid', why: 'expired' };
      session.previous = { hash: req.hash, rotatedAt: now, sealed: req.sealedSuccessor };
      session.generation = req.generation + 1;
      session.tokenHash = req.successorHash;
      session.tokenExpiresAt = Math.min(now + req.refreshTtlMs, session.expiresAt);
      session.lastRefreshedSeconds = Math.floor(now / 1000);
      return { outcome: 'rotated', user: session.user.record, ...session.times(now) };
    }
    if (req.generation > session.generation) return { outcome: 'invalid', why: 'unknown' };
    const previous = session.previous;
    if (req.generation === session.generation - 1 && previous && now - previous.rotatedAt <= req.reuseIntervalMs) {
      if (previous.hash !== req.hash) return { outcome: 'invalid', why: 'unknown' };
      return { outcome: 'retried', user: session.user.record, sealedSuccessor: previous.sealed, ...session.times(now) };
    }
    // Only a tag the service holds proves this old token was ever issued.
    if (!req.tagged) return { outcome: 'invalid', why: 'unknown' };
    // An older generation, or the previous one past the interval: the token was stolen or leaked.
    this.removeSession(session);
    return { outcome: 'reused', sessionId: req.sessionId, userId: req.userId };
  }

  async revokeSessionByRefreshToken(token: ParsedRefreshToken): Promise<{ sessionId: string; userId: string } | undefined> {
    const session = this.sessionOf(token.userId, token.sessionId);
    if (!session || token.generation > session.generation) return undefined;
    if (token.generation === session.generation ? token.hash !== session.tokenHash : !token.tagged) return undefined;
    this.removeSession(session);
    return { sessionId: token.sessionId, userId: token.userId };
  }

  async liveSession(userId: string, sessionId: string): Promise<LiveUser | undefined> {
    const session = this.sessions.get(sessionId);
    return session !== undefined && session.user.record.id === userId && session.active(this.now(), this.options.accessGraceMs) ? session.user.record : undefined;
  }

  async listSessions(userId: string): Promise<SessionInfo[]> {
    const user = this.byId.get(userId);
    const out: SessionInfo[] = [];
    if (user) this.pruneSessions(user, this.now(), (s) => out.push(s.info()));
    return out;
  }

  async exportSessions(userId: string): Promise<SessionRecord[]> {
    const user = this.byId.get(userId);
    const out: SessionRecord[] = [];
    if (!user) return out;
    this.pruneSessions(user, this.now(), (s) => {
      const { id, createdAt, lastRefreshedAt, expiresAt, clientAddress, userAgent } = s.info();
      out.push({ id, userId, userGeneration: s.userGeneration, generation: s.generation, tokenHash: s.tokenHash, previous: s.previous, createdAt, lastRefreshedAt, expiresAt, tokenExpiresAt: s.tokenExpiresAt, clientAddress, userAgent, amr: s.amr });
    });
    return out;
  }

  async revokeSession(userId: string, sessionId: string): Promise<boolean> {
    const session = this.sessionOf(userId, sessionId);
    if (!session || !session.active(this.now(), this.options.accessGraceMs)) return false;
    this.removeSession(session);
    return true;
  }
}
