import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadConfig, readConfig, settings, type Env } from '../config.js';
import { validateNewPassword, validateNewUsername } from '../core/credentials.js';
import { generateEcPem, KeyError, loadEcKeyFile, loadEcKeyFiles, readEcKeys } from '../core/keys.js';
import { readDenylistFile } from '../core/password-denylist.js';
import { ARGON2ID_OWASP, Argon2Hasher } from '../core/password-hasher.js';
import { ReloadableTls } from '../grpc/tls.js';
import { maskUrl, type Setting } from '../settings.js';
import { parseUsersFile, readUsersFile } from '../users-file.js';

/** A failure the operator caused: printed as one line, exit code 2 (usage) or 1 (anything else). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

export interface Io {
  readonly env: Env;
  readonly out: (text: string) => void;
  /** One line to standard error (the command name is put in front). */
  readonly err: (line: string) => void;
  readonly readPassword: () => Promise<string>;
}

/** keys generate <file>: a new P-256 key, mode 0600, never over an existing file; prints its kid. */
export function keysGenerate(path: string, io: Io): void {
  try {
    writeFileSync(path, generateEcPem(), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot create ${path}: ${code === 'EEXIST' ? 'the file exists (refusing to overwrite a key)' : (code ?? 'error')}`, 1);
  }
  io.out(`${loadEcKeyFile(path).kid}\n`);
}

function minLength(env: Env): number {
  try {
    return loadConfig({ AUTH_PASSWORD_MIN_LENGTH: env.AUTH_PASSWORD_MIN_LENGTH }).passwordMinLength;
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

async function hashFromInput(io: Io): Promise<string> {
  let password: string;
  try {
    password = validateNewPassword(await io.readPassword(), { minLength: minLength(io.env) });
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  return new Argon2Hasher({ ...ARGON2ID_OWASP, concurrency: 1, maxQueue: 1 }).hash(password);
}

/** hash-password: the argon2id hash of a password read from standard input. */
export async function hashPassword(io: Io): Promise<void> {
  io.out(`${await hashFromInput(io)}\n`);
}

/** users add <file> <username> [--roles a,b]: appends a user with a password read from standard input. */
export async function usersAdd(file: string, rawUsername: string, roles: string[], io: Io): Promise<void> {
  let username: string;
  try {
    username = validateNewUsername(rawUsername);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  const existing = existsSync(file) ? readUsersFile(file) : [];
  if (existing.some((u) => u.username === username)) throw new CliError(`${file} already has a user ${username}`, 1);
  const line = `${username}:${await hashFromInput(io)}:${roles.join(',')}`;
  // Check the line exactly as the service will read it (roles, hash shape) before writing it.
  try {
    parseUsersFile(line, file);
  } catch (err) {
    throw new CliError((err as Error).message.replace(`${file} line 1: `, ''), 2);
  }
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  appendFileSync(file, `${text.length > 0 && !text.endsWith('\n') ? '\n' : ''}${line}\n`, { mode: 0o600 });
  io.out(`added ${username} to ${file}\n`);
}

/** A value as check-config shows it: secrets masked, credentials in URLs (user info or query) too. */
function shown(value: unknown, setting: Pick<Setting<unknown>, 'secret' | 'url'>): unknown {
  if (value === undefined || (!setting.secret && !setting.url)) return value;
  if (typeof value === 'string' && /^[a-z]+:\/\//.test(value)) return maskUrl(value);
  return `[set: ${Buffer.byteLength(String(value))} bytes]`;
}

/**
 * check-config: validates the environment and every file it names, reports every problem at
 * once (exit 2), AUTH_* variables that are no setting among them, and prints the effective
 * configuration with secrets masked.
 */
export function checkConfig(io: Io): number {
  const report = readConfig(io.env);
  // The service itself only warns (and starts): before a rollout, a misspelt setting is an error,
  // or it ships with the value it was meant to change left at its default.
  const problems = [
    ...report.unknown.map(({ variable, suggestion }) => `configuration error: ${variable} is not a setting of this service (the service would ignore it)${suggestion ? `: did you mean ${suggestion}?` : ''}`),
    ...report.problems.map((p) => `configuration error: ${p}`),
  ];
  const config = report.config;
  if (config) {
    const files: Array<() => unknown> = [
      ...config.signingKeyFiles.map((f) => () => readEcKeys(f)),
      // Across files: the same key twice (each file's own problems are reported above).
      () => {
        try {
          if (config.signingKeyFiles.length > 0) loadEcKeyFiles(config.signingKeyFiles);
        } catch (err) {
          if (err instanceof KeyError && err.message.endsWith('is listed twice')) throw err;
        }
      },
      () => config.usersFile !== undefined && readUsersFile(config.usersFile),
      () => config.passwordDenylistFile !== undefined && readDenylistFile(config.passwordDenylistFile),
      () => config.tls && new ReloadableTls(config.tls),
    ];
    for (const check of files) {
      try {
        check();
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  }
  if (problems.length > 0 || !config) {
    for (const p of problems) io.err(p);
    return 2;
  }
  if (config.mfaRequiredRoles.length > 0) {
    // A service account has no second factor: the setting is about people, and says so here.
    io.err(
      `note: AUTH_MFA_REQUIRED_ROLES (${config.mfaRequiredRoles.join(',')}) is withheld from users' password-only sessions only: a service account holding ${config.mfaRequiredRoles.length === 1 ? 'that role' : 'those roles'} gets ${config.mfaRequiredRoles.length === 1 ? 'it' : 'them'} with its credential alone` +
        (config.adminRequireMfa ? '' : '; AUTH_ADMIN_REQUIRE_MFA=true keeps every service account out of AdminService'),
    );
  }
  const effective: Record<string, unknown> = { ...config };
  for (const [field, setting] of Object.entries(settings) as Array<[string, Setting<unknown>]>) {
    if (field in effective) effective[field] = shown(field === 'jwtSecret' ? config.jwtSecret?.toString('utf8') : effective[field], setting);
  }
  io.out(`${JSON.stringify(effective, null, 2)}\n`);
  const unset = Object.values(settings).filter((s: Setting<unknown>) => io.env[s.variable] === undefined).length;
  io.out(`configuration OK (${unset} settings at their defaults)\n`);
  return 0;
}
