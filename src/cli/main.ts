#!/usr/bin/env node
import { serve } from '../main.js';
import { checkConfig, CliError, hashPassword, keysGenerate, usersAdd, type Io } from './commands.js';
import { exportStore, importStore, migrateCommand } from './copy-store.js';
import { readPassword } from './read-password.js';

const HELP = `grpc-auth: the auth service and its operator commands

usage: grpc-auth <command> [arguments]

  serve                               start the service (configured by AUTH_* variables; see README)
  keys generate <file>                write a new ES256 (P-256) signing key, mode 0600, and print its kid
  hash-password                       read a password from standard input (no echo), print its argon2id hash
  users add <file> <username> [--roles a,b]
                                      read a password from standard input and append the user to a users file
  migrate [--status]                  apply the PostgreSQL schema migrations this release ships (or show the
                                      schema's version); AUTH_DATABASE_URL names the database
  export [--out <file>]               write the users and service accounts of the configured store (memory
                                      with AUTH_USERS_FILE, Redis or PostgreSQL) as JSON Lines
  import [--in <file>]                read such a file into the PostgreSQL store (AUTH_DATABASE_URL), keeping
                                      every id, password hash and credential
  check-config                        validate the environment and the files it names, print the effective
                                      configuration with secrets masked
  help                                print this text

Exit codes: 0 done, 1 failed, 2 bad usage or configuration.
`;

/** Runs one command line; resolves with the exit code. Exported for tests. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        await serve();
        return -1; // keeps running until a signal
      case 'keys':
        if (rest[0] !== 'generate' || rest.length !== 2) throw new CliError('usage: grpc-auth keys generate <file>', 2);
        keysGenerate(rest[1]!, io);
        return 0;
      case 'hash-password':
        if (rest.length !== 0) throw new CliError('usage: grpc-auth hash-password < password', 2);
        await hashPassword(io);
        return 0;
      case 'users': {
        const rolesAt = rest.indexOf('--roles');
        const roles = rolesAt >= 0 ? (rest[rolesAt + 1] ?? '').split(',').filter((r) => r !== '') : [];
        const positional = rolesAt >= 0 ? [...rest.slice(0, rolesAt), ...rest.slice(rolesAt + 2)] : rest;
        if (positional[0] !== 'add' || positional.length !== 3) throw new CliError('usage: grpc-auth users add <file> <username> [--roles a,b]', 2);
        await usersAdd(positional[1]!, positional[2]!, roles, io);
        return 0;
      }
      case 'migrate':
        await migrateCommand(rest, io);
        return 0;
      case 'export':
        await exportStore(rest, io);
        return 0;
      case 'import':
        await importStore(rest, io);
        return 0;
      case 'check-config':
        return checkConfig(io);
      case 'help':
      case '--help':
      case '-h':
        io.out(HELP);
        return 0;
      default:
        throw new CliError(`${command === undefined ? 'no command' : `unknown command "${command}"`}\n\n${HELP}`, 2);
    }
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`grpc-auth: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`grpc-auth: ${(err as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  run(process.argv.slice(2), { env: process.env, out: (t) => process.stdout.write(t), err: (line) => process.stderr.write(`grpc-auth: ${line}\n`), readPassword }).then((code) => {
    if (code >= 0) process.exitCode = code;
  });
}
