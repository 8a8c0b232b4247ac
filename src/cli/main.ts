#!/usr/bin/env node
import { serve } from '../main.js';
import { VERSION } from '../version.js';
import { checkConfig, CliError, hashPassword, keysGenerate, usersAdd, type Io } from './commands.js';
import { exportStore, importStore, migrateCommand } from './copy-store.js';
import { HEALTH_USAGE, healthCommand } from './health.js';
import { MAINTENANCE_USAGE, maintenanceCommand, SESSIONS_USAGE, sessionsCommand, STORE_USAGE, storeCommand, USERS_LIST_USAGE, usersListCommand } from './operate.js';
import { readPassword } from './read-password.js';

/** Each command: its usage (printed by `--help`, `help <command>` and on a usage error), one line about it, and what it does. */
interface Command {
  readonly usage: string;
  readonly about: string;
  run(args: readonly string[], io: Io): Promise<number>;
}

const done = (work: Promise<unknown> | void) => Promise.resolve(work).then(() => 0);
const noArguments = (name: string, args: readonly string[], usage: string) => {
  if (args.length > 0) throw new CliError(`${name} takes no arguments\n\n${usage}`, 2);
};

const COMMANDS: Record<string, Command> = {
  serve: {
    usage: 'usage: grpc-auth serve\n\nStarts the service, configured by AUTH_* variables (docs/configuration.md); runs until SIGTERM or SIGINT.',
    about: 'start the service (configured by AUTH_* variables)',
    run: async (args) => {
      noArguments('serve', args, COMMANDS.serve!.usage);
      await serve();
      return -1; // keeps running until a signal
    },
  },
  health: {
    usage: HEALTH_USAGE,
    about: 'ask a running service for its health: exit 0 when SERVING (plaintext, TLS or mTLS)',
    run: (args, io) => healthCommand(args, io),
  },
  keys: {
    usage: 'usage: grpc-auth keys generate <file>\n\nWrites a new ES256 (P-256) signing key to <file> (mode 0600, never over an existing file) and prints its kid.',
    about: 'keys generate <file>: write a new ES256 signing key, mode 0600, and print its kid',
    run: (args, io) => {
      if (args[0] !== 'generate' || args.length !== 2) throw new CliError(COMMANDS.keys!.usage, 2);
      return done(keysGenerate(args[1]!, io));
    },
  },
  'hash-password': {
    usage: 'usage: grpc-auth hash-password < password\n\nReads a password from standard input (no echo on a terminal) and prints its argon2id hash.',
    about: 'read a password from standard input (no echo), print its argon2id hash',
    run: (args, io) => {
      noArguments('hash-password', args, COMMANDS['hash-password']!.usage);
      return done(hashPassword(io));
    },
  },
  users: {
    usage: `usage: grpc-auth users add <file> <username> [--roles a,b]\n       ${USERS_LIST_USAGE.slice('usage: '.length)}\n\nadd: reads a password from standard input and appends the user to a users file (AUTH_USERS_FILE).\nlist: the users of the shared store (Redis or PostgreSQL), in name order: name, id, roles, state, origin (--json: JSON Lines).`,
    about: 'users add <file> <username>: append to a users file; users list: the store\'s users',
    run: (args, io) => {
      if (args[0] === 'list') return done(usersListCommand(args.slice(1), io));
      const rolesAt = args.indexOf('--roles');
      const roles = rolesAt >= 0 ? (args[rolesAt + 1] ?? '').split(',').filter((r) => r !== '') : [];
      const positional = rolesAt >= 0 ? [...args.slice(0, rolesAt), ...args.slice(rolesAt + 2)] : args;
      if (positional[0] !== 'add' || positional.length !== 3) throw new CliError(COMMANDS.users!.usage, 2);
      return done(usersAdd(positional[1]!, positional[2]!, roles, io));
    },
  },
  migrate: {
    usage: 'usage: grpc-auth migrate [--status]\n\nApplies the PostgreSQL schema migrations this release ships, once, under a lock (AUTH_DATABASE_URL names the database); --status only prints the schema\'s version.',
    about: 'apply the PostgreSQL schema migrations this release ships (or --status)',
    run: (args, io) => done(migrateCommand(args, io)),
  },
  maintenance: {
    usage: MAINTENANCE_USAGE,
    about: 'maintenance on|off|status: every instance refuses writes (reads go on), for a move',
    run: (args, io) => done(maintenanceCommand(args, io)),
  },
  sessions: {
    usage: SESSIONS_USAGE,
    about: "sessions revoke-all: end every user's sessions (after a restore or a key leak)",
    run: (args, io) => done(sessionsCommand(args, io)),
  },
  store: {
    usage: STORE_USAGE,
    about: "store stats: the shared store's figures (rows, oldest session, schema; keys, memory)",
    run: (args, io) => done(storeCommand(args, io)),
  },
  export: {
    usage: 'usage: grpc-auth export [--out <file>]\n\nWrites the users and service accounts of the configured store (memory with AUTH_USERS_FILE, Redis or PostgreSQL) as JSON Lines: to a new file (mode 0600), or standard output.',
    about: 'write the users and service accounts of the configured store as JSON Lines',
    run: (args, io) => done(exportStore(args, io)),
  },
  import: {
    usage: 'usage: grpc-auth import [--in <file>]\n\nReads an export into the PostgreSQL store (AUTH_DATABASE_URL), keeping every id, hash and credential; checks the whole file first and writes nothing when a line is bad.',
    about: 'read such a file into the PostgreSQL store (AUTH_DATABASE_URL)',
    run: (args, io) => done(importStore(args, io)),
  },
  'check-config': {
    usage: 'usage: grpc-auth check-config\n\nValidates the environment and every file it names; prints the effective configuration with secrets masked (exit 2 names what is wrong).',
    about: 'validate the environment and its files, print the configuration with secrets masked',
    run: (args, io) => {
      noArguments('check-config', args, COMMANDS['check-config']!.usage);
      return Promise.resolve(checkConfig(io));
    },
  },
  version: {
    usage: 'usage: grpc-auth version (or --version)\n\nPrints the version of this release.',
    about: 'print the version of this release (also --version)',
    run: (_args, io) => {
      io.out(`${VERSION}\n`);
      return Promise.resolve(0);
    },
  },
};

const HELP = `grpc-auth ${VERSION}: the auth service and its operator commands

usage: grpc-auth <command> [arguments]       grpc-auth <command> --help

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)}${c.about}`)
  .join('\n')}
  help [command]  print this text, or a command's usage

Exit codes: 0 done, 1 failed, 2 bad usage or configuration. Errors are one line on standard error.
`;

/** Runs one command line; resolves with the exit code (-1: still running). Exported for tests. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === '--version' || name === '-v') return await COMMANDS.version!.run([], io);
    if (name === undefined) throw new CliError(`no command\n\n${HELP}`, 2);
    if (name === 'help' || name === '--help' || name === '-h') {
      const about = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
      if (rest[0] !== undefined && !about) throw new CliError(`unknown command "${rest[0]}"\n\n${HELP}`, 2);
      io.out(about ? `${about.usage}\n` : HELP);
      return 0;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) throw new CliError(`unknown command "${name}"\n\n${HELP}`, 2);
    // --help anywhere prints the usage and does nothing else (never a key file named "--help").
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`${command.usage}\n`);
      return 0;
    }
    return await command.run(rest, io);
  } catch (err) {
    io.err(err instanceof CliError ? err.message : (err as Error).message);
    return err instanceof CliError ? err.exitCode : 1;
  }
}

if (require.main === module) {
  run(process.argv.slice(2), { env: process.env, out: (t) => process.stdout.write(t), err: (line) => process.stderr.write(`grpc-auth: ${line}\n`), readPassword }).then((code) => {
    if (code >= 0) process.exitCode = code;
  });
}
