import { validateNewPassword } from '../core/credentials.js';
import { ARGON2ID_OWASP, Argon2Hasher } from '../core/password-hasher.js';

/**
 * Prints the argon2id hash of a password read from standard input, for the users file:
 *   npm run --silent hash-password < secret.txt
 * or interactively (the password is not echoed). A trailing newline is not part of the password.
 */
async function readPassword(): Promise<string> {
  const input = process.stdin;
  if (input.isTTY) {
    process.stderr.write('password: ');
    input.setRawMode(true);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of input) {
    const buf = chunk as Buffer;
    if (input.isTTY) {
      if (buf.includes(3)) process.exit(130); // Ctrl-C
      const end = buf.findIndex((b) => b === 13 || b === 10 || b === 4);
      if (end >= 0) {
        chunks.push(buf.subarray(0, end));
        break;
      }
    }
    chunks.push(buf);
  }
  if (input.isTTY) {
    input.setRawMode(false);
    process.stderr.write('\n');
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function main(): Promise<void> {
  const minLength = Number(process.env.AUTH_PASSWORD_MIN_LENGTH ?? 15);
  let password: string;
  try {
    password = validateNewPassword(await readPassword(), { minLength });
  } catch (err) {
    process.stderr.write(`hash-password: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const hasher = new Argon2Hasher({ ...ARGON2ID_OWASP, concurrency: 1, maxQueue: 1 });
  process.stdout.write(`${await hasher.hash(password)}\n`);
}

void main();
