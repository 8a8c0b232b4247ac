import { readFileSync } from 'node:fs';

/**
 * Passwords refused at registration (NIST SP 800-63B section 5.1.1.2: values known to be commonly
 * used, expected or compromised). A small list ships here; AUTH_PASSWORD_DENYLIST_FILE adds a
 * bigger one (one password a line, such as a breach corpus). Compared after NFKC, case-insensitively.
 */
export const COMMON_PASSWORDS: readonly string[] = [
  'password', 'password1', 'password12', 'password123', 'password1234', 'passw0rd', 'p@ssw0rd', 'p@ssword',
  'passwordpassword', 'password12345678', 'password123456789',
  '12345678', '123456789', '1234567890', '12345678910', '123456789012', '1234567890123', '12345678901234',
  '123456789012345', '1234567890123456', '123123123', '987654321', '11111111', '00000000', '12121212',
  'qwertyuiop', 'qwerty123', 'qwertyuiopasdfg', 'qwertyuiopasdfgh', 'qwertyuiopasdfghjkl', '1q2w3e4r', '1q2w3e4r5t',
  '1qaz2wsx', '1qaz2wsx3edc', 'zaq12wsx', 'qazwsxedc', 'qazwsxedcrfv', 'asdfghjkl', 'zxcvbnm123',
  'iloveyou', 'iloveyou123', 'sunshine', 'princess', 'football', 'baseball', 'basketball', 'superman', 'starwars',
  'whatever', 'trustno1', 'letmein1', 'welcome1', 'welcome123', 'admin123', 'administrator', 'changeme',
  'changeme123', 'computer', 'michael1', 'jennifer', 'mercedes', 'corvette', 'shadow123', 'monkey123', 'dragon123',
  'abcdefgh', 'abc12345', 'abcd1234', 'abcdefghijklmnop', 'letmeinletmein', 'iloveyouiloveyou',
  'thisismypassword', 'mypasswordisstrong', 'correcthorsebatterystaple',
];

/** Reads a deny-list file: one password a line; blank lines are skipped. */
export function readDenylistFile(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .filter((line) => line.length > 0);
}

export class PasswordDenylist {
  private readonly entries: Set<string>;

  constructor(entries: Iterable<string> = COMMON_PASSWORDS) {
    this.entries = new Set([...entries].map(canonical));
  }

  /** True for a listed password and for one character repeated (NIST: "repetitive characters"). */
  refuses(password: string): boolean {
    const value = canonical(password);
    return this.entries.has(value) || /^(.)\1*$/su.test(value);
  }
}

function canonical(password: string): string {
  return password.normalize('NFKC').toLowerCase();
}
