import { timingSafeEqual } from 'node:crypto';
import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import { sha256 } from './sha256.js';
import { totpStep } from './totp.js';

/**
 * A user's second-factor and recovery state, kept by the store as one small versioned document
 * beside the user (deleted with them): the TOTP factor, the recovery codes' hashes, an enrollment
 * waiting for its confirmation, Logins waiting for their second factor, and a password-reset
 * code's hash. Every change is a compare-and-set on the version, so two instances deciding at
 * once (the same TOTP step, the same recovery or reset code) cannot both win.
 *
 * Bounds (state a client can cause): one document per user; at most `MAX_PENDING_LOGINS`
 * pending logins (the oldest goes), one enrollment, one reset code an admin made and one for each
 * of at most `MAX_REQUESTED_RESET_CODES` client addresses that asked (the oldest goes),
 * `RECOVERY_CODES` hashes. Expired entries leave at the next write; the whole document stays
 * under 2 KiB.
 */
export interface UserSecrets {
  /** The confirmed factor: its base32 secret and the last time step a code of it was accepted. */
  readonly totp?: { readonly secret: string; readonly confirmedAt: number; readonly lastStep: number } | undefined;
  /** SHA-256 of each unused recovery code. */
  readonly recovery?: readonly string[] | undefined;
  /** An enrollment waiting for ConfirmTotp. */
  readonly pending?: { readonly id: string; readonly secret: string; readonly expiresAt: number } | undefined;
  /** Logins whose password checked out, waiting for CompleteLogin: their mfa_token's hash, and the user's generation then. */
  readonly logins?: readonly { readonly hash: string; readonly expiresAt: number; readonly generation: number }[] | undefined;
  /**
   * Password-reset codes' hashes, each good once until it expires: the newest an admin made
   * (`from: 'admin'`), and the newest one asked for from each client address (`from`: a digest of
   * the address). A request from one address never replaces another's code, nor an admin's.
   */
  readonly resets?: readonly ResetCode[] | undefined;
  /** The one reset code documents written before 0.2.0 held; read as an admin's. */
  readonly reset?: { readonly hash: string; readonly expiresAt: number } | undefined;
  /** Passkeys (passkeys.ts): the user's WebAuthn user handle, set once and never rewritten, and their credentials. */
  readonly webauthn?: { readonly handle: string; readonly passkeys: readonly StoredPasskey[] } | undefined;
}

/** A passkey as kept: what verifying its assertions needs, and what ListPasskeys shows. */
export interface StoredPasskey {
  /** The credential id, base64url (as the browser's `id`). */
  readonly id: string;
  /** COSE public key, base64url. */
  readonly publicKey: string;
  /** The authenticator's signature counter at the last use (0 for synced passkeys). */
  readonly counter: number;
  readonly transports: readonly string[];
  /** Backup eligible (a multi-device, synced credential) and backed up (BE and BS flags). */
  readonly backupEligible: boolean;
  readonly backedUp: boolean;
  readonly aaguid: string;
  readonly name: string;
  readonly createdAt: number;
  readonly lastUsedAt?: number | undefined;
}

/** What spending a code changed: the document after it, and which kind of code it was. */
export type Spent = { readonly doc: UserSecrets; readonly recovery: boolean };


export interface ResetCode {
  readonly hash: string;
  readonly expiresAt: number;
  /** 'admin', or a digest of the client address that asked for it. */
  readonly from: string;
}

/** The store's side: an opaque document and its version. */
export interface UserSecretsRecord {
  /**
   * Changed by every write, to a value this user id has never had, not even before the user was
   * deleted and made again with the same id (a users-file user, an import): a compare-and-set
   * decided on an old document can never land on a new one. 0 is "nothing stored", and is never
   * stored: every empty state is the same, so a decision made on one holds on any other.
   */
  readonly version: number;
  readonly data: string;
}

/** The port: one document per user, changed only by compare-and-set. */
export interface UserSecretStore {
  /** The user's document, or undefined when none is stored (or the user is gone). */
  readUserSecrets(userId: string): Promise<UserSecretsRecord | undefined>;
  /**
   * Writes `data` (undefined deletes the document) if the stored version is still `ifVersion`
   * (0: nothing stored); atomic. 'conflict' when another write came first, 'user_gone' when the
   * user does not exist (nothing is written for a user that is not there).
   */
  writeUserSecrets(userId: string, ifVersion: number, data: string | undefined): Promise<'written' | 'conflict' | 'user_gone'>;
}

export const RECOVERY_CODES = 10;
export const MAX_PENDING_LOGINS = 5;
/** Addresses whose requested reset codes a user's document holds at once (the admin's is kept besides). */
export const MAX_REQUESTED_RESET_CODES = 5;
/** A write that loses this many compare-and-set races in a row gives up with `conflict` (retry). */
const MAX_RACES = 8;

export function parseSecrets(record: UserSecretsRecord | undefined): UserSecrets {
  if (record === undefined) return {};
  return JSON.parse(record.data) as UserSecrets;
}

/** What of a user's document outlives a move to another store: the confirmed factor, the recovery codes' hashes, the passkeys and the user handle. */
export interface SecondFactorExport {
  readonly totp?: NonNullable<UserSecrets['totp']> | undefined;
  readonly recovery?: readonly string[] | undefined;
  readonly webauthn?: NonNullable<UserSecrets['webauthn']> | undefined;
}

/** The lasting part of a stored document (undefined with neither factor nor passkeys); pending logins, enrollments and reset codes stay behind. */
export function lastingSecrets(record: UserSecretsRecord | undefined): SecondFactorExport | undefined {
  const doc = parseSecrets(record);
  const lasting = compact({ totp: doc.totp, recovery: doc.totp ? (doc.recovery ?? []) : undefined, webauthn: doc.webauthn });
  return Object.keys(lasting).length > 0 ? lasting : undefined;
}

/**
 * A second factor brought across by a later import of a newer export (moving stores in two
 * passes): what the target keeps. The same factor (same confirmation time) keeps the later step
 * and only the recovery codes unspent on both sides, so a code spent anywhere stays spent; a
 * different factor, the one confirmed last. No factor in the export: one confirmed before the
 * export was turned off at the source (it goes); one confirmed after it stays. Passkeys the same
 * way, one by one (the higher counter and the later use win; one made before the export and
 * missing from it was deleted at the source); the user handle already here stays. Returns the
 * document to write, or undefined when it is to be deleted.
 */
export function mergeImportedFactor(existing: UserSecrets, imported: SecondFactorExport | undefined, exportedAt: number): UserSecrets | undefined {
  const [totp, recovery] = mergedTotp(existing, imported, exportedAt);
  const doc = compact({ ...existing, totp, recovery, webauthn: mergedPasskeys(existing.webauthn, imported?.webauthn, exportedAt) });
  return Object.keys(doc).length === 0 ? undefined : doc;
}

function mergedTotp(existing: UserSecrets, imported: SecondFactorExport | undefined, exportedAt: number): [UserSecrets['totp'], UserSecrets['recovery']] {
  const keep = existing.totp;
  if (!imported?.totp) return !keep || keep.confirmedAt >= exportedAt ? [keep, existing.recovery] : [undefined, undefined];
  if (keep && keep.confirmedAt === imported.totp.confirmedAt && keep.secret === imported.totp.secret) {
    return [{ ...keep, lastStep: Math.max(keep.lastStep, imported.totp.lastStep) }, (existing.recovery ?? []).filter((h) => (imported.recovery ?? []).includes(h))];
  }
  if (keep && keep.confirmedAt > imported.totp.confirmedAt) return [keep, existing.recovery];
  return [imported.totp, imported.recovery ?? []];
}

function mergedPasskeys(existing: UserSecrets['webauthn'], imported: UserSecrets['webauthn'], exportedAt: number): UserSecrets['webauthn'] {
  if (!existing) return imported;
  const theirs = new Map((imported?.passkeys ?? []).map((p) => [p.id, p]));
  const passkeys: StoredPasskey[] = [];
  for (const mine of existing.passkeys) {
    const other = theirs.get(mine.id);
    theirs.delete(mine.id);
    if (other) passkeys.push({ ...other, counter: Math.max(mine.counter, other.counter), lastUsedAt: Math.max(mine.lastUsedAt ?? 0, other.lastUsedAt ?? 0) || undefined });
    else if (mine.createdAt >= exportedAt) passkeys.push(mine);
  }
  return { handle: existing.handle, passkeys: [...passkeys, ...theirs.values()] };
}

/** Drops what has expired by `now`; empty fields go. */
export function pruned(doc: UserSecrets, now: number): UserSecrets {
  const logins = doc.logins?.filter((l) => l.expiresAt > now);
  return compact({
    totp: doc.totp,
    recovery: doc.totp ? doc.recovery : undefined,
    pending: doc.pending && doc.pending.expiresAt > now ? doc.pending : undefined,
    logins: logins && logins.length > 0 ? logins.slice(-MAX_PENDING_LOGINS) : undefined,
    resets: liveResetCodes(doc, now),
    webauthn: doc.webauthn,
  });
}

/** The reset codes still good at `now`: one per source (the newest), the admin's and the newest addresses'. */
function liveResetCodes(doc: UserSecrets, now: number): ResetCode[] | undefined {
  const all = [...(doc.reset ? [{ ...doc.reset, from: 'admin' }] : []), ...(doc.resets ?? [])].filter((r) => r.expiresAt > now);
  const newest = new Map<string, ResetCode>();
  for (const r of all) {
    const seen = newest.get(r.from);
    if (!seen || r.expiresAt >= seen.expiresAt) newest.set(r.from, r);
  }
  const admin = newest.get('admin');
  const requested = [...newest.values()].filter((r) => r.from !== 'admin').sort((a, b) => a.expiresAt - b.expiresAt).slice(-MAX_REQUESTED_RESET_CODES);
  const kept = [...(admin ? [admin] : []), ...requested];
  return kept.length > 0 ? kept : undefined;
}

function compact(doc: UserSecrets): UserSecrets {
  return Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== undefined)) as UserSecrets;
}

export type SecretsDecision<T> = { readonly write: UserSecrets; readonly result: T } | { readonly keep: true; readonly result: T };

/**
 * Reads the user's document, lets `decide` choose what to write, and writes it if nothing changed
 * meanwhile; otherwise reads again and decides again (the loser of a race sees the winner's write,
 * so a TOTP step or a code is spent once). `decide` may throw to refuse; it must be pure, and may
 * be called more than once.
 *
 * One instance writes one user's document one change at a time: changes that arrive while one is
 * written wait, and are then decided in order on one read (each sees the document as the ones
 * before it left it) and written together. So only other instances' writes can make a change
 * lose its compare-and-set, and a flood of changes for one user (reset requests from many
 * addresses) costs one write at a time, not a race each that the last of them loses.
 *
 * Changes decided before the first one that writes (a `keep`, a refusal) rest on the stored
 * document alone and are answered as soon as it is read. A change that writes, and every one
 * decided after it, is answered once the write lands, or gets its failure: if the write loses
 * `MAX_RACES` races in a row (to other instances), every change from the first that writes on
 * fails with `conflict`.
 */
export function changeSecrets<T>(store: UserSecretStore, userId: string, now: () => number, decide: (doc: UserSecrets) => SecretsDecision<T>): Promise<T> {
  let users = changing.get(store);
  if (!users) changing.set(store, (users = new Map()));
  let waiting = users.get(userId);
  const start = waiting === undefined;
  if (start) users.set(userId, (waiting = []));
  const change = new Promise<T>((resolve, reject) => waiting!.push({ decide, now, settle: (outcome) => ('result' in outcome ? resolve(outcome.result as T) : reject(outcome.error)) }));
  if (start) void writeInTurn(store, users, userId);
  return change;
}

type Outcome = { readonly result: unknown } | { readonly error: unknown };

interface Change {
  readonly decide: (doc: UserSecrets) => SecretsDecision<unknown>;
  readonly now: () => number;
  readonly settle: (outcome: Outcome) => void;
}

/**
 * Per store and user, the changes waiting for this instance's write in progress. An entry lives
 * while one of the user's changes is written or waits: at most one a call in progress.
 */
const changing = new WeakMap<UserSecretStore, Map<string, Change[]>>();

/** Users whose document this instance is changing now through `store` (for tests: the map empties when they end). */
export function usersBeingChanged(store: UserSecretStore): number {
  return changing.get(store)?.size ?? 0;
}

async function writeInTurn(store: UserSecretStore, users: Map<string, Change[]>, userId: string): Promise<void> {
  const waiting = users.get(userId)!;
  while (waiting.length > 0) await writeTogether(store, userId, waiting.splice(0));
  users.delete(userId);
}

/**
 * Decides the changes in order on one read and writes the result by compare-and-set; on a lost
 * race, those not yet answered again. Answers every change, never throws. The document is pruned
 * at the time of the first change not yet answered.
 */
async function writeTogether(store: UserSecretStore, userId: string, batch: readonly Change[]): Promise<void> {
  let open = batch;
  try {
    for (let race = 0; race < MAX_RACES; race++) {
      const record = await store.readUserSecrets(userId);
      const at = open[0]!.now();
      let doc = pruned(parseSecrets(record), at);
      let firstWrite = -1;
      const outcomes = open.map((change, i): Outcome => {
        try {
          const decision = change.decide(doc);
          if ('keep' in decision) return { result: decision.result };
          // Pruned on the way out too: whatever `decide` added, what is stored keeps the bounds.
          doc = pruned(decision.write, at);
          if (firstWrite < 0) firstWrite = i;
          return { result: decision.result };
        } catch (error) {
          return { error };
        }
      });
      // Those decided before the first write rest on the stored document: answered now, whatever the write does.
      const settled = firstWrite < 0 ? open.length : firstWrite;
      open.slice(0, settled).forEach((change, i) => change.settle(outcomes[i]!));
      open = open.slice(settled);
      if (open.length === 0) return;
      const empty = Object.keys(doc).length === 0;
      const outcome = empty && record === undefined ? 'written' : await store.writeUserSecrets(userId, record?.version ?? 0, empty ? undefined : JSON.stringify(doc));
      if (outcome === 'written') {
        open.forEach((change, i) => change.settle(outcomes[settled + i]!));
        return;
      }
      if (outcome === 'user_gone') throw new AuthError('not_found', 'user not found');
    }
    throw new AuthError('conflict', 'the account changed meanwhile; retry');
  } catch (error) {
    for (const change of open) change.settle({ error });
  }
}

/** SHA-256, base64url: high-entropy codes and tokens need no slow hash. */
export function digest(value: string): string {
  return sha256(value, 'base64url');
}

export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// Crockford's base32: no I, L, O, U, so a code read aloud or off paper is typed right.
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A code for people: 16 Crockford base32 characters (80 bits) in groups of four, "7K2M-…". */
export function newHumanCode(random: Random): string {
  const bytes = random.bytes(10);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = '';
  for (let i = 0; i < 16; i++) out = CROCKFORD[Number((bits >> BigInt(i * 5)) & 31n)]! + out;
  return out.match(/.{4}/g)!.join('-');
}

/** The canonical form of a typed code: upper case, no dashes or spaces, Crockford's look-alikes mapped; undefined if not 16 of its characters. */
export function canonicalHumanCode(typed: string): string | undefined {
  if (typed.length > 64) return undefined;
  const plain = typed.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  return /^[0-9A-HJKMNP-TV-Z]{16}$/.test(plain) ? plain : undefined;
}

/** The stored hash of a human code (canonical form). */
export function humanCodeDigest(code: string): string | undefined {
  const canonical = canonicalHumanCode(code);
  return canonical === undefined ? undefined : digest(`code:${canonical}`);
}

/**
 * Spends a code of the confirmed factor: a TOTP code of a step after the last one accepted
 * (so each step's code works once, RFC 6238 section 5.2), or an unused recovery code (which
 * leaves). Undefined when it is neither. Pure: the caller writes the result by compare-and-set.
 */
export function spend(doc: UserSecrets, code: string, now: number, allowRecovery = true): Spent | undefined {
  const totp = doc.totp;
  if (!totp) return undefined;
  const trimmed = code.replace(/\s/g, '');
  const step = totpStep(totp.secret, trimmed, now);
  if (step !== undefined) return step > totp.lastStep ? { doc: { ...doc, totp: { ...totp, lastStep: step } }, recovery: false } : undefined;
  if (!allowRecovery) return undefined;
  const hash = humanCodeDigest(code);
  const recovery = doc.recovery ?? [];
  const index = hash === undefined ? -1 : recovery.findIndex((h) => sameDigest(h, hash));
  if (index < 0) return undefined;
  return { doc: { ...doc, recovery: recovery.filter((_, i) => i !== index) }, recovery: true };
}
