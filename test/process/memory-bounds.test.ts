import { execFile } from 'node:child_process';
import { join } from 'node:path';

/**
 * Memory a client can cause, measured as a deployment sees it: the service's process RSS after a
 * full GC, at a scale where a leak would show many times over. The service runs in a process of
 * its own (test/helpers/memory/probe.js, started with --expose-gc), the load in another
 * (load.js), so neither the test runner's nor the client's memory is counted. After the rounds a
 * heap snapshot counts the strings that still hold the load's names (a planted control proves the
 * count finds them).
 *
 * What the probe showed (issue 20): nothing holds the names or the calls. Heap in use is flat;
 * RSS rises in the first round and then stays level: the main-thread malloc heap ([heap] in
 * /proc/self/smaps) keeps the high-water mark of the native memory of HTTP/2 streams that wait for
 * a major GC (it does not shrink back, whatever glibc tunables say), and later rounds reuse it.
 */
interface Memory {
  rss: number;
  heapUsed: number;
}
interface ProbeResult {
  warm: Memory;
  rounds: Memory[];
  codes: Record<string, number>;
  planted: number;
  retained: number;
  state: { watching: number; attempts?: number; ceremonies?: number; hashThreads?: number };
}

const MB = 1024 * 1024;

function probe(scenario: string, rounds: number, perRound: number, concurrency: number, marker: string, env: Record<string, string> = {}): Promise<ProbeResult> {
  const script = join(__dirname, '..', 'helpers', 'memory', 'probe.js');
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--expose-gc', script, scenario, String(rounds), String(perRound), String(concurrency), marker, JSON.stringify(env)], { timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as ProbeResult),
    ),
  );
}

function report(name: string, r: ProbeResult): string {
  const fmt = (m: Memory) => `${(m.rss / MB).toFixed(0)} MB RSS / ${(m.heapUsed / MB).toFixed(1)} MB heap`;
  return `${name}: warm ${fmt(r.warm)}; ${r.rounds.map(fmt).join('; ')}; names retained ${r.retained}`;
}

describe('memory a client can cause, as RSS after a full GC (service in its own process)', () => {
  test.each([
    // 3 × 3,000 Health/Watch calls of unique 16 kB names, 16 at a time, each cancelled after its first answer.
    { name: 'Health/Watch, unique 16 kB names, cancelled', scenario: 'watch', perRound: 3000, concurrency: 16, marker: 'probe-watch-', codes: { '1': 9000 }, leakPerRound: 3000 * 16_000 },
    // 3 × 10,000 refused Logins from a throttled address, unique names that NFKC expands 18-fold, 256 in flight.
    { name: 'refused Logins, names NFKC expands, 256 in flight', scenario: 'login', perRound: 10_000, concurrency: 256, marker: 'probe-lg-', codes: { '8': 30_000 }, leakPerRound: 10_000 * 3_000 },
    // 3 × 10,000 RequestPasswordReset for unique unknown names from 3,000 addresses, 64 in flight,
    // with a hook configured (nobody is found, so nothing is sent): every call answered OK.
    {
      name: 'RequestPasswordReset, unique unknown names, 3,000 addresses',
      scenario: 'reset',
      perRound: 10_000,
      concurrency: 64,
      marker: 'probe-rs-',
      codes: { '0': 30_000 },
      leakPerRound: 10_000 * 3_000,
      env: { AUTH_TRUSTED_PROXIES: 'loopback', AUTH_PASSWORD_RESET_HOOK_URL: 'http://127.0.0.1:9/reset', AUTH_PASSWORD_RESET_HOOK_SECRET: `whsec_${Buffer.alloc(32, 3).toString('base64')}` },
    },
  ])('$name: no name retained, heap flat, RSS level after the first round', async ({ name, scenario, perRound, concurrency, marker, codes, leakPerRound, env }) => {
    const r = await probe(scenario, 3, perRound, concurrency, marker, env);
    // eslint-disable-next-line no-console
    console.log(report(name, r));
    expect(r.codes).toEqual(codes);
    expect(r.state.watching).toBe(0);
    expect(r.planted).toBe(3);
    expect(r.retained).toBe(0);
    const last = r.rounds[2]!;
    expect(last.heapUsed - r.warm.heapUsed).toBeLessThan(4 * MB);
    // Level after the first round: a leak of the names alone would add leakPerRound (30 MB or
    // more) every round, twice that from round 1 to round 3; the machine's noise stays under one.
    expect(last.rss - r.rounds[0]!.rss).toBeLessThan(leakPerRound);
  }, 150_000);

  // A trusted proxy forwarding a new client address on every call (issue 29): each Login for an
  // unknown name adds a counter for the name and one for the address, up to the memory store's
  // cap. Run at a cap of 6,000 (the service's is 100,000) so it is reached in the first round.
  // Measured at the service's own cap with the same probe (SECURITY.md, state budget):
  //   node --expose-gc test/helpers/memory/probe.js forwarded 8 20000 64 probe-fw- '{"AUTH_TRUSTED_PROXIES":"loopback"}'
  test('Logins from a new forwarded address every call: the counters stop at their cap, heap and RSS level past it', async () => {
    const r = await probe('forwarded', 6, 4000, 64, 'probe-fw-', { AUTH_TRUSTED_PROXIES: 'loopback', PROBE_ATTEMPT_CAP: '6000' });
    // eslint-disable-next-line no-console
    console.log(report('forwarded addresses, cap 6,000', r));
    expect(r.codes).toEqual({ '16': 24_000 });
    expect(r.state.attempts).toBe(6000);
    expect(r.retained).toBe(0);
    // Past the cap (reached in the first round: 8,000 counters asked for), nothing more is held:
    // 8,000 more counters a round would add about 4 MB of heap and 16 MB of RSS each round.
    expect(r.rounds[5]!.heapUsed - r.rounds[1]!.heapUsed).toBeLessThan(2 * MB);
    // RSS after a GC moves by ±10 MB from round to round on a busy machine (17 MB once in CI), so
    // the lowest of the last two rounds is held against the highest of rounds 2 and 3: noise can
    // only shrink that difference, a leak would make it 32 MB or more.
    const late = Math.min(r.rounds[4]!.rss, r.rounds[5]!.rss);
    const early = Math.max(r.rounds[1]!.rss, r.rounds[2]!.rss);
    expect(late - early).toBeLessThan(16 * MB);
  }, 150_000);

  // Every Login costs an argon2id hash (19 MiB) on the service's low-priority hashing threads:
  // unknown names from a new forwarded address each, so none is throttled, at the service's real
  // cost, 64 in flight against 2 hashes at a time (the rest queue). The counters (a name's and an
  // address's for each login) stop at a cap of 160, reached in the warm-up. Few logins a round:
  // with other busy processes on the cores (npm run test:loaded) the hashes, 10 nice values below
  // them, get a tenth of a core each.
  test('Logins that each cost a real argon2id hash: 3 hashing threads at most, heap and RSS level', async () => {
    const r = await probe('forwarded', 5, 80, 64, 'probe-fw-', { AUTH_TRUSTED_PROXIES: 'loopback', PROBE_ATTEMPT_CAP: '160', PROBE_HASHER: '1' });
    // eslint-disable-next-line no-console
    console.log(report('logins on the hashing threads', r));
    expect(r.codes).toEqual({ '16': 400 });
    expect(r.state.attempts).toBe(160);
    // Two checks at a time and the dummy hash, made once: never a thread more than the three slots.
    expect(r.state.hashThreads).toBeGreaterThanOrEqual(2);
    expect(r.state.hashThreads).toBeLessThanOrEqual(3);
    expect(r.retained).toBe(0);
    expect(r.rounds[4]!.heapUsed - r.rounds[1]!.heapUsed).toBeLessThan(2 * MB);
    // A hash's 19 MiB is given back when it ends; one kept per hash would add 1.5 GB a round, one
    // thread's worth of memory (about 9 MB) per round would show as 27 MB.
    const late = Math.min(r.rounds[3]!.rss, r.rounds[4]!.rss);
    const early = Math.max(r.rounds[0]!.rss, r.rounds[1]!.rss);
    expect(late - early).toBeLessThan(24 * MB);
  }, 150_000);

  // StartPasskeyLogin needs no account: each call keeps a ceremony for 5 minutes, up to the memory
  // store's cap of 10,000 (the oldest goes past it). 6 rounds of 12,000, the cap passed in the first.
  test('StartPasskeyLogin ceremonies stop at their cap of 10,000; no name retained, heap and RSS level past it', async () => {
    const r = await probe('passkey', 6, 12_000, 64, 'probe-pk-', { AUTH_WEBAUTHN_RP_ID: 'example.test', AUTH_PASSKEY_STARTS_PER_ADDRESS: '1000000', PROBE_STORE: '1' });
    // eslint-disable-next-line no-console
    console.log(report('passkey ceremonies, cap 10,000', r));
    expect(r.codes).toEqual({ '0': 72_000 });
    expect(r.state.ceremonies).toBe(10_000);
    expect(r.retained).toBe(0);
    // 12,000 more ceremonies a round would add about 5 MB of heap each round.
    expect(r.rounds[5]!.heapUsed - r.rounds[1]!.heapUsed).toBeLessThan(2 * MB);
    // RSS after a GC moves 10-18 MB from round to round here with the heap level to 0.2 MB (seven
    // runs), so as for the forwarded addresses the lowest of the last two rounds is held against the
    // highest of rounds 2 and 3, within 24 MB: a native leak of 8 MB a round or more shows; the
    // ceremonies themselves (5 MB of heap a round if kept) are the heap check's above.
    const late = Math.min(r.rounds[4]!.rss, r.rounds[5]!.rss);
    const early = Math.max(r.rounds[1]!.rss, r.rounds[2]!.rss);
    expect(late - early).toBeLessThan(24 * MB);
  }, 150_000);
});
