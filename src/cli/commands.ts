import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ConfigError, configVariables, loadConfig, type Config, type Env } from '../config.js';
import { validateNewPassword, validateNewUsername } from '../core/credentials.js';
import { generateEcPem, loadEcKeyFile } from '../core/keys.js';
import { readDenylistFile } from '../core/password-denylist.js';
import { ARGON2ID_OWASP, Argon2Hasher } from '../core/password-hasher.js';
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
  const existing = existsSync(file) ? readUsersFile(file, 0) : [];
  if (existing.some((u) => u.username === username)) throw new CliError(`${file} already has a user ${username}`, 1);
  const line = `${username}:${await hashFromInput(io)}:${roles.join(',')}`;
  // Check the line exactly as the service will read it (roles, hash shape) before writing it.
  try {
    parseUsersFile(line, file, 0);
  } catch (err) {
    throw new CliError((err as Error).message.replace(`${file} line 1: `, ''), 2);
  }
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  appendFileSync(file, `${text.length > 0 && !text.endsWith('\n') ? '\n' : ''}${line}\n`, { mode: 0o600 });
  io.out(`added ${username} to ${file}\n`);
}

/** check-config: validates the environment and the files it names; prints the effective configuration, secrets masked. */
export function checkConfig(io: Io): void {
  let config: Config;
  try {
    config = loadConfig(io.env);
    if (config.signingKeyFile !== undefined) config.signingKeyFile.split(',').forEach((f) => loadEcKeyFile(f.trim()));
    if (config.usersFile !== undefined) readUsersFile(config.usersFile, 0);
    if (config.passwordDenylistFile !== undefined) readDenylistFile(config.passwordDenylistFile);
  } catch (err) {
    throw new CliError(err instanceof ConfigError ? `configuration error: ${err.message}` : (err as Error).message, 2);
  }
  const shown: Record<string, unknown> = { ...config };
  if (config.jwtSecret) shown.jwtSecret = `[set: ${config.jwtSecret.length} bytes]`;
  // Credentials can sit in the user-info part or in the query (?password=…): mask both.
  if (config.redisUrl) shown.redisUrl = config.redisUrl.replace(/\/\/([^@/]*)@/, '//****@').replace(/\?.*$/, '?****');
  io.out(`${JSON.stringify(shown, null, 2)}\n`);
  const unset = Object.keys(configVariables).filter((name) => io.env[name] === undefined);
  io.out(`configuration OK (${unset.length} variables at their defaults)\n`);
}
