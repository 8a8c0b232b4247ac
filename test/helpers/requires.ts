import { spawnSync } from 'node:child_process';

/** Programs some suites need, and how to install them (Debian, as CI does in .ci/run). */
export const TOOLS = {
  'redis-server': { check: ['redis-server', '--version'], install: 'apt-get install -y redis-server' },
  'redis-cli': { check: ['redis-cli', '--version'], install: 'apt-get install -y redis-tools' },
  'redis-sentinel': { check: ['redis-sentinel', '--version'], install: 'apt-get install -y redis-sentinel' },
  // Debian puts the server programs under /usr/lib/postgresql/<major>/bin, off PATH.
  postgresql: { check: ['sh', '-c', 'command -v initdb || ls /usr/lib/postgresql/*/bin/initdb'], install: 'apt-get install -y postgresql' },
  // Debian's PgBouncer, with its defaults, in front of a test PostgreSQL (transaction pooling).
  pgbouncer: { check: ['sh', '-c', 'command -v pgbouncer || ls /usr/sbin/pgbouncer'], install: 'apt-get install -y pgbouncer' },
  openssl: { check: ['openssl', 'version'], install: 'apt-get install -y openssl' },
  // A C-core gRPC client (and PyJWT) on Debian's own Python, /usr/bin/python3.
  // An RFC 6238 implementation the service does not share: the README's second-factor walkthrough computes its codes with it.
  oathtool: { check: ['oathtool', '--version'], install: 'apt-get install -y oathtool' },
  // The real jq: docs/passkeys.md builds requests with -n --arg --rawfile (the stand-in reads fields only).
  // Debian's Chromium, driven by playwright-core: the sign-in page's test (examples/web-signin).
  chromium: { check: ['chromium', '--version'], install: 'apt-get install -y chromium' },
  jq: { check: ['jq', '--version'], install: 'apt-get install -y jq' },
  'python3-grpcio': { check: ['/usr/bin/python3', '-c', 'import grpc, jwt, cryptography'], install: 'apt-get install -y python3-grpcio python3-jwt python3-cryptography' },
} as const;
export type Tool = keyof typeof TOOLS;

const found = new Map<Tool, boolean>();

export function available(tool: Tool): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    const [cmd, ...args] = TOOLS[tool].check;
    ok = spawnSync(cmd, args).status === 0;
    found.set(tool, ok);
  }
  return ok;
}

/** Tools the person running the tests chose to go without: AUTH_TEST_SKIP=redis-server,openssl. */
function optedOut(): Set<string> {
  return new Set((process.env.AUTH_TEST_SKIP ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

/**
 * Describes a suite that needs `tools`. When one is missing the suite FAILS, naming the install
 * command: a green run must mean everything ran. Only an explicit AUTH_TEST_SKIP naming the tool
 * skips it, and then loudly (a warning here, and the skipped count in jest's closing line).
 */
export function describeNeeding(tools: readonly Tool[], name: string, body: () => void): void {
  const missing = tools.filter((t) => !available(t));
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const skipped = optedOut();
  const unexcused = missing.filter((t) => !skipped.has(t));
  if (unexcused.length === 0) {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED because AUTH_TEST_SKIP names ${missing.join(', ')}: "${name}"`);
    describe.skip(name, () => test(`needs ${missing.join(', ')}`, () => {}));
    return;
  }
  describe(name, () => {
    test(`needs ${unexcused.join(', ')}`, () => {
      throw new Error(
        `${unexcused.join(', ')} not on PATH: install with \`${unexcused.map((t) => TOOLS[t].install).join(' && ')}\`, ` +
          `or skip these tests knowingly with AUTH_TEST_SKIP=${unexcused.join(',')}`,
      );
    });
  });
}
