import { createReadStream, createWriteStream, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { systemClock } from '../clock.js';
import { loadConfig, type Config, type Env } from '../config.js';
import { checkUsernameScripts, usernameSkeleton, validateNewUsername, validateRoles } from '../core/credentials.js';
import { isId } from '../core/ids.js';
import { ARGON2ID_PHC } from '../core/password-hasher.js';
import type { EventLog } from '../core/events.js';
import type { UserRecord } from '../core/records.js';
import type { ApiKeyRecord } from '../core/api-keys.js';
import { PASSKEY_DEFAULTS } from '../core/passkeys.js';
import { lastingSecrets, RECOVERY_CODES, type SecondFactorExport, type StoredPasskey } from '../core/user-secrets.js';
import { importedAccountProblem, type Credential, type ServiceAccountRecord } from '../core/service-accounts.js';
import { storeBackend } from '../store/backends.js';
import { seedFileUsers } from '../users-file-seed.js';
import { migrate, schemaState } from '../store/postgres/migrations.js';
import type { ImportCounts } from '../store/postgres/import.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import type { SessionRecord, Store } from '../store/store.js';
import { fileUserId, readUsersFile } from '../users-file.js';
import { CliError, type Io } from './commands.js';

/**
 * Moving in: `grpc-auth export` writes what the configured store holds that must outlive a move
 * (users with their password hashes and second factors, their sessions, service accounts with
 * their credentials) as JSON Lines; `grpc-auth import` writes such a file into PostgreSQL,
 * keeping every id, hash, time, factor, credential and session, so nobody's password,
 * authenticator app, client secret or refresh token changes. Run again with a newer export, it
 * brings across what changed since. Throttles, assertion ids, pending logins and enrollments, and
 * reset codes are not moved.
 */

export const EXPORT_FORMAT = 'grpc-auth-export';
/** 2 added users' `secondFactor`, 3 sessions; a release that reads fewer refuses a newer file rather than drop what it holds. */
export const EXPORT_VERSION = 3;
const READABLE_VERSIONS: readonly number[] = [1, 2, 3];

export type ExportLine =
  | { readonly kind: 'header'; readonly format: typeof EXPORT_FORMAT; readonly version: number; readonly store: string; readonly exportedAt: string }
  | ({ readonly kind: 'user'; readonly secondFactor?: SecondFactorExport } & UserRecord)
  | ({ readonly kind: 'service_account' } & ServiceAccountRecord)
  | ({ readonly kind: 'api_key' } & ApiKeyRecord)
  | ({ readonly kind: 'session' } & SessionRecord);

const PAGE = 1000;
const silent: EventLog = { info() {}, warn() {}, error() {} };

/** The environment's configuration, or a usage error (exit 2) naming every problem. */
function configOf(env: Env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

/** The store the environment configures, connected (the memory store holds the users file, as the service would seed it). */
async function configuredStore(env: Env): Promise<{ store: Store; config: Config }> {
  const config = configOf(env);
  const { store } = storeBackend(config, systemClock);
  try {
    await store.connect();
  } catch (err) {
    await store.close();
    throw new CliError(`cannot reach the ${config.store} store: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, 1);
  }
  if (config.store === 'memory') {
    if (config.usersFile === undefined) throw new CliError('the memory store holds nothing between runs: set AUTH_USERS_FILE to export its users, or AUTH_REDIS_URL / AUTH_DATABASE_URL', 2);
    await seedFileUsers(store, readUsersFile(config.usersFile), silent);
  }
  return { store, config };
}

async function* pages<T extends { readonly name?: string; readonly username?: string }>(list: (after: string | undefined) => Promise<T[]>): AsyncGenerator<T> {
  for (let after: string | undefined; ; ) {
    const page = await list(after);
    yield* page;
    if (page.length < PAGE) return;
    const last = page[page.length - 1]!;
    after = last.username ?? last.name;
  }
}

function write(out: Writable, line: ExportLine): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.write(`${JSON.stringify(line)}\n`)) resolve();
    else out.once('drain', resolve).once('error', reject);
  });
}

/** export [--out file]: every user and service account of the configured store, in name order. */
export async function exportStore(args: readonly string[], io: Io): Promise<{ users: number; serviceAccounts: number; sessions: number }> {
  const outAt = args.indexOf('--out');
  if ((outAt >= 0 && args.length !== 2) || (outAt < 0 && args.length !== 0)) throw new CliError('usage: grpc-auth export [--out <file>]', 2);
  let fd: number | undefined;
  if (outAt >= 0) {
    try {
      // Never over an existing file; readable by its owner only (it holds password hashes).
      fd = openSync(args[outAt + 1]!, 'wx', 0o600);
    } catch (err) {
      throw new CliError(`cannot write ${args[outAt + 1]}: ${(err as NodeJS.ErrnoException).code === 'EEXIST' ? 'it exists already' : (err as Error).message}`, 1);
    }
  }
  const { store, config } = await configuredStore(io.env);
  const out: Writable = fd !== undefined ? createWriteStream('', { fd }) : process.stdout;
  const counts = { users: 0, serviceAccounts: 0, sessions: 0, apiKeys: 0 };
  // An owner's API keys right after the owner (the HMACs need the same AUTH_API_KEY_SECRET there).
  const keysOf = async (ownerId: string) => {
    for (const key of await store.listApiKeys(ownerId)) {
      await write(out, { kind: 'api_key', ...key });
      counts.apiKeys++;
    }
  };
  try {
    await write(out, { kind: 'header', format: EXPORT_FORMAT, version: EXPORT_VERSION, store: config.store, exportedAt: new Date().toISOString() });
    for await (const user of pages((after) => store.listUsers({ prefix: '', after, limit: PAGE }))) {
      const secondFactor = lastingSecrets(await store.readUserSecrets(user.id));
      await write(out, { kind: 'user', ...user, ...(secondFactor ? { secondFactor } : {}) });
      counts.users++;
      // Each user's sessions right after the user (the import writes them in that order).
      for (const session of await store.exportSessions(user.id)) {
        await write(out, { kind: 'session', ...session });
        counts.sessions++;
      }
      await keysOf(user.id);
    }
    for await (const account of pages((after) => store.listServiceAccounts({ prefix: '', after, limit: PAGE }))) {
      await write(out, { kind: 'service_account', ...account });
      counts.serviceAccounts++;
      await keysOf(account.id);
    }
  } finally {
    await store.close();
    if (out !== process.stdout) await new Promise<void>((resolve) => out.end(resolve));
  }
  const keys = counts.apiKeys > 0 ? `, ${counts.apiKeys} API keys` : '';
  io.err(`exported ${counts.users} users, ${counts.sessions} sessions${keys} and ${counts.serviceAccounts} service accounts from the ${config.store} store`);
  return counts;
}

const STRING = (v: unknown): v is string => typeof v === 'string';
const TIME = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const ROLES = (v: unknown): v is string[] => Array.isArray(v) && v.every(STRING);
/** Exactly these keys, nothing more: what is imported is what was checked. */
const ONLY = (v: object, keys: readonly string[]) => Object.keys(v).every((k) => keys.includes(k));
const B64U = (v: unknown, min: number, max: number): boolean => STRING(v) && v.length >= min && v.length <= max && /^[A-Za-z0-9_-]*$/.test(v);
const PASSKEY = (v: unknown): v is StoredPasskey => {
  const p = v as StoredPasskey | null;
  return (
    typeof p === 'object' && p !== null && ONLY(p, ['id', 'publicKey', 'counter', 'transports', 'backupEligible', 'backedUp', 'aaguid', 'name', 'createdAt', 'lastUsedAt']) &&
    B64U(p.id, 16, 1364) && B64U(p.publicKey, 16, 2048) && TIME(p.counter) && Array.isArray(p.transports) && p.transports.length <= 8 && p.transports.every((t) => STRING(t) && /^[a-z-]{1,32}$/.test(t)) &&
    typeof p.backupEligible === 'boolean' && typeof p.backedUp === 'boolean' && STRING(p.aaguid) && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(p.aaguid) &&
    STRING(p.name) && p.name.length >= 1 && p.name.length <= 64 && TIME(p.createdAt) && (p.lastUsedAt === undefined || TIME(p.lastUsedAt))
  );
};
const SECOND_FACTOR = (v: unknown): v is SecondFactorExport => {
  const f = v as SecondFactorExport | null;
  if (typeof f !== 'object' || f === null || !ONLY(f, ['totp', 'recovery', 'webauthn']) || (f.totp === undefined && f.webauthn === undefined)) return false;
  const totp =
    f.totp === undefined
      ? f.recovery === undefined
      : typeof f.totp === 'object' && f.totp !== null && ONLY(f.totp, ['secret', 'confirmedAt', 'lastStep']) &&
        STRING(f.totp.secret) && /^[A-Z2-7]{16,128}$/.test(f.totp.secret) && TIME(f.totp.confirmedAt) && TIME(f.totp.lastStep) &&
        Array.isArray(f.recovery) && f.recovery.length <= RECOVERY_CODES && f.recovery.every((h) => STRING(h) && /^[A-Za-z0-9_-]{43}$/.test(h));
  const w = f.webauthn;
  const webauthn =
    w === undefined ||
    (typeof w === 'object' && w !== null && ONLY(w, ['handle', 'passkeys']) && B64U(w.handle, 43, 43) && Array.isArray(w.passkeys) && w.passkeys.length <= PASSKEY_DEFAULTS.maxPerUser &&
      w.passkeys.every(PASSKEY) && new Set(w.passkeys.map((p) => p.id)).size === w.passkeys.length);
  return totp && webauthn;
};

/** A name as an error may show it: quoted, escaped, at most 40 characters. */
function quoted(name: unknown): string {
  return JSON.stringify(String(name).slice(0, 40)) + (String(name).length > 40 ? '…' : '');
}

/**
 * What CreateUser and the users file would refuse in an imported user (its shape already checked):
 * a name not in its stored form or against the rules, roles against the rules, a hash that is no
 * argon2id PHC string, a file user whose id is not its name's. Undefined when nothing is.
 */
function userProblem(u: UserRecord): string | undefined {
  if (!isId(u.id, 'usr')) return 'id is not a user id (usr_ and 16 bytes)';
  let canonical: string;
  try {
    canonical = validateNewUsername(u.username);
    checkUsernameScripts(canonical);
    validateRoles(u.roles);
  } catch (err) {
    return (err as Error).message;
  }
  if (canonical !== u.username) return `username is not in the form the service stores (${quoted(canonical)})`;
  if (!ARGON2ID_PHC.test(u.passwordHash)) return 'passwordHash is not an argon2id PHC string';
  if (u.origin === 'file' && u.id !== fileUserId(u.username)) return "origin is file, but the id is not the users file's id for that name";
  if (u.origin === 'file' && !/^[A-Za-z0-9_-]{22}$/.test(u.fileDigest ?? '')) return 'origin is file, without the digest of its line';
  if (u.origin === 'api' && u.fileDigest !== undefined) return 'fileDigest belongs to users of the users file only';
  return undefined;
}

/** One line of an export, checked field by field; the problem, naming the line, otherwise. */
function parseLine(text: string, n: number): ExportLine {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CliError(`line ${n}: not JSON`, 1);
  }
  const bad = (field: string) => new CliError(`line ${n}: ${String(value.kind)} without a valid ${field}`, 1);
  switch (value.kind) {
    case 'header':
      if (value.format !== EXPORT_FORMAT) throw new CliError(`line ${n}: not a ${EXPORT_FORMAT} file`, 1);
      if (!READABLE_VERSIONS.includes(value.version as number)) throw new CliError(`line ${n}: export version ${String(value.version)}; this release reads versions ${READABLE_VERSIONS.slice(0, -1).join(', ')} and ${READABLE_VERSIONS.at(-1)}`, 1);
      return value as ExportLine;
    case 'user':
      for (const f of ['id', 'username', 'passwordHash']) if (!STRING(value[f])) throw bad(f);
      if (!/^usr_/.test(value.id as string)) throw bad('id');
      if (!ROLES(value.roles)) throw bad('roles');
      if (typeof value.disabled !== 'boolean') throw bad('disabled');
      for (const f of ['createdAt', 'passwordChangedAt', 'generation', 'revision']) if (!TIME(value[f])) throw bad(f);
      if (value.origin !== 'api' && value.origin !== 'file') throw bad('origin');
      if (value.fileDigest !== undefined && !STRING(value.fileDigest)) throw bad('fileDigest');
      if (value.secondFactor !== undefined && !SECOND_FACTOR(value.secondFactor)) throw bad('secondFactor');
      const userBad = userProblem(value as unknown as UserRecord);
      if (userBad) throw new CliError(`line ${n}: user ${quoted(value.username)}: ${userBad}`, 1);
      return value as ExportLine;
    case 'service_account':
      for (const f of ['id', 'name']) if (!STRING(value[f])) throw bad(f);
      if (!/^sva_/.test(value.id as string)) throw bad('id');
      if (!ROLES(value.roles)) throw bad('roles');
      if (typeof value.disabled !== 'boolean') throw bad('disabled');
      for (const f of ['createdAt', 'revision']) if (!TIME(value[f])) throw bad(f);
      if (!Array.isArray(value.credentials) || !value.credentials.every((c: Credential) => STRING(c?.id) && ['secret', 'key', 'certificate'].includes(c?.type) && TIME(c?.createdAt))) throw bad('credentials');
      const accountBad = importedAccountProblem(value as unknown as ServiceAccountRecord);
      if (accountBad) throw new CliError(`line ${n}: service account ${quoted(value.name)}: ${accountBad}`, 1);
      return value as ExportLine;
    case 'session': {
      for (const f of ['id', 'userId', 'tokenHash', 'clientAddress', 'userAgent']) if (!STRING(value[f])) throw bad(f);
      if (!isId(value.id as string, 'ses')) throw bad('id');
      if (!isId(value.userId as string, 'usr')) throw bad('userId');
      for (const f of ['userGeneration', 'generation', 'createdAt', 'lastRefreshedAt', 'expiresAt', 'tokenExpiresAt']) if (!TIME(value[f])) throw bad(f);
      if (!Array.isArray(value.amr) || value.amr.length === 0 || !value.amr.every((m) => STRING(m) && /^[a-z]{2,8}$/.test(m))) throw bad('amr');
      const p = value.previous as { hash?: unknown; rotatedAt?: unknown; sealed?: unknown } | undefined;
      if (p !== undefined && (typeof p !== 'object' || p === null || !STRING(p.hash) || !TIME(p.rotatedAt) || !STRING(p.sealed))) throw bad('previous');
      return value as ExportLine;
    }
    case 'api_key': {
      if (!ONLY(value, ['kind', 'id', 'ownerId', 'name', 'roles', 'hash', 'createdAt', 'expiresAt', 'ownerGeneration', 'lastUsedAt'])) throw bad('fields');
      if (!isId(value.id as string, 'apk')) throw bad('id');
      if (!isId(value.ownerId as string, 'usr') && !isId(value.ownerId as string, 'sva')) throw bad('ownerId');
      if (!STRING(value.name) || value.name.length > 64) throw bad('name');
      if (!ROLES(value.roles)) throw bad('roles');
      if (!STRING(value.hash) || !/^[A-Za-z0-9_-]{43}$/.test(value.hash)) throw bad('hash');
      for (const f of ['createdAt', 'expiresAt', 'ownerGeneration']) if (!TIME(value[f])) throw bad(f);
      if (value.lastUsedAt !== undefined && !TIME(value.lastUsedAt)) throw bad('lastUsedAt');
      return value as ExportLine;
    }
    default:
      throw new CliError(`line ${n}: unknown kind ${JSON.stringify(value.kind)}`, 1);
  }
}

export type ImportReport = ImportCounts;

/**
 * import [--in file]: the whole file is read and checked before anything is written (a bad line
 * is reported by number, and nothing is imported); then it goes into PostgreSQL in transactions
 * of a thousand records. A record whose id is already there is left alone; one whose name
 * belongs to another id stops the import with both named, so nothing is silently dropped.
 */
export async function importStore(args: readonly string[], io: Io): Promise<ImportReport> {
  const inAt = args.indexOf('--in');
  if ((inAt >= 0 && args.length !== 2) || (inAt < 0 && args.length !== 0)) throw new CliError('usage: grpc-auth import [--in <file>]', 2);
  const config = configOf(io.env);
  if (config.store !== 'postgres') throw new CliError('import writes into PostgreSQL: set AUTH_DATABASE_URL to the database to fill', 2);
  const lines: ExportLine[] = [];
  const input = createInterface({ input: inAt >= 0 ? createReadStream(args[inAt + 1]!) : process.stdin, crlfDelay: Infinity });
  let n = 0;
  // Ids and names are unique in a store: a file that repeats one cannot be imported whole.
  const seen = new Map<string, number>();
  for await (const text of input) {
    n++;
    if (text.trim() === '') continue;
    const line = parseLine(text, n);
    // The first line that is not blank is the header, and only it.
    if ((lines.length === 0) !== (line.kind === 'header')) throw new CliError(`line ${n}: ${lines.length === 0 ? `not a ${EXPORT_FORMAT} file (no header)` : 'a second header'}`, 1);
    if (line.kind !== 'header') {
      for (const key of [`id ${line.id}`, ...(line.kind === 'user' ? [`user ${line.username}`] : line.kind === 'service_account' ? [`service account ${line.name}`] : [])]) {
        const first = seen.get(key);
        if (first !== undefined) throw new CliError(`line ${n}: ${key.startsWith('id') ? 'the id' : 'the name'} of line ${first} again`, 1);
        seen.set(key, n);
      }
    }
    lines.push(line);
  }
  if (lines.length === 0) throw new CliError(`the input is empty: not a ${EXPORT_FORMAT} file`, 1);
  const store = postgresOf(config);
  try {
    await store.connect();
    const header = lines[0] as Extract<ExportLine, { kind: 'header' }>;
    const report = await store.importRecords(lines.slice(1) as Array<Exclude<ExportLine, { kind: 'header' }>>, usernameSkeleton, Date.parse(header.exportedAt) || 0);
    const keys = report.apiKeys > 0 ? `, ${report.apiKeys} API keys` : '';
    io.err(`imported ${report.users} users, ${report.sessions} sessions${keys} and ${report.serviceAccounts} service accounts; ${report.updated} brought up to date; ${report.present} as they were`);
    return report;
  } catch (err) {
    if (err instanceof CliError) throw err;
    const cause = (err as Error).cause;
    throw new CliError(`${(err as Error).message}${cause instanceof Error ? `: ${cause.message}` : ''}`, 1);
  } finally {
    await store.close();
  }
}

function postgresOf(config: Config): PostgresStore {
  return new PostgresStore({
    connection: { url: config.databaseUrl!, caFile: config.databaseCaFile, poolSize: 2 },
    // An import's transactions are large: a bound for them, not for a call.
    statementTimeoutMs: 60_000,
    accessGraceMs: config.accessTtlMs + config.clockSkewMs,
    maxSessionsPerUser: config.maxSessionsPerUser,
    migrate: config.databaseMigrate,
  });
}

/** migrate [--status]: applies the pending schema migrations (or only reports the schema's version). */
export async function migrateCommand(args: readonly string[], io: Io): Promise<void> {
  if (args.length > 1 || (args.length === 1 && args[0] !== '--status')) throw new CliError('usage: grpc-auth migrate [--status]', 2);
  const config = configOf(io.env);
  if (config.store !== 'postgres') throw new CliError('migrate is for the PostgreSQL store: set AUTH_DATABASE_URL', 2);
  const store = postgresOf({ ...config, databaseMigrate: 'off' });
  try {
    if (args[0] === '--status') {
      const state = await schemaState(store.client);
      io.out(`schema version ${state.applied}; this release knows ${state.known}${state.applied < state.known ? ' (run grpc-auth migrate)' : state.applied > state.known ? ' (the database is newer than this release)' : ''}\n`);
      return;
    }
    const applied = await migrate(store.client);
    io.out(applied.length === 0 ? 'the schema is up to date\n' : `applied migrations ${applied.join(', ')}\n`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError((err as Error).message, 1);
  } finally {
    await store.close();
  }
}
