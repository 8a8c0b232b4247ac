import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { composeService } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { createKeySet, generateEcKey } from '../../src/core/keys';
import { AuthError } from '../../src/errors';
import { createClient } from '../../src/grpc/client';
import { createLogger } from '../../src/logging';
import { HASH_NICE, HashThreads } from '../../src/core/hash-threads';
import { Argon2Hasher, type Argon2HasherOptions } from '../../src/core/password-hasher';
import { eventually } from '../helpers/wait';

const SMALL = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const;
const ARGON2ID = 2;

/** The nice value of each thread of this process, by thread id (Linux: a nice value is a thread's own). */
function niceByThread(): Map<number, number> {
  const nice = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after the command's closing parenthesis; nice is field 19 of stat(5), 17th here.
      nice.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return nice;
}

/** This process's own nice value (the tests' runner may have one). */
const own = () => niceByThread().get(process.pid) as number;
/** Threads at HASH_NICE over the process's own: the low-priority hashing threads. */
const lowered = () => {
  const nice = niceByThread();
  const target = Math.min(19, (nice.get(process.pid) as number) + HASH_NICE);
  return [...nice.values()].filter((n) => n === target).length;
};

describe.each([
  ['the libuv pool', {}],
  ['low-priority threads of its own', { lowPriority: true }],
] as const)('Argon2Hasher on %s', (_, mode) => {
  const options: Argon2HasherOptions = { ...SMALL, concurrency: 2, maxQueue: 64, ...mode };
  let hasher: Argon2Hasher;
  beforeAll(() => {
    hasher = new Argon2Hasher(options);
  });
  afterAll(() => hasher.close());

  test.each([
    { what: 'the right password', password: 'correct horse battery staple', expected: true },
    { what: 'a wrong password', password: 'correct horse battery stapler', expected: false },
    { what: 'an empty password', password: '', expected: false },
    { what: 'a password in another script', password: 'Пароль-пароль', expected: false },
  ])('a check of $what answers $expected', async ({ password, expected }) => {
    const stored = await hasher.hash('correct horse battery staple');
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    expect(await hasher.verify(stored, password)).toBe(expected);
  });

  test.each([['not a hash'], [''], ['$argon2id$v=19$m=1024,t=1,p=1$broken'], ['$2b$10$abcdefghijklmnopqrstuv']])('a stored hash that cannot be parsed (%j) is a no, not an error', async (stored) => {
    expect(await hasher.verify(stored, 'correct horse battery staple')).toBe(false);
  });

  test('the dummy check takes a password and resolves', async () => {
    await expect(hasher.verifyDummy('anything')).resolves.toBeUndefined();
  });
});

describe('low-priority hashing threads', () => {
  test('run at nice +10 while the main thread keeps its priority; told once', async () => {
    const told: boolean[] = [];
    const main = own();
    const before = lowered();
    const hasher = new Argon2Hasher({ ...SMALL, concurrency: 2, maxQueue: 64, newHashConcurrency: 1, lowPriority: true, onPriority: (l) => told.push(l) });
    try {
      const stored = await hasher.hash('p');
      await Promise.all([hasher.verify(stored, 'p'), hasher.verify(stored, 'q'), hasher.hash('r')]);
      expect(told).toEqual([true]);
      expect(own()).toBe(main);
      // Two checks and a new hash ran at once: one thread each, all lowered.
      expect(lowered() - before).toBe(3);
    } finally {
      await hasher.close();
    }
    await eventually(() => expect(lowered()).toBe(before));
  });

  // The built module in a process started under `nice -n`: the thread goes 10 below the process
  // it runs in, never past 19, and says whether it could. (Nice values for a runner at nice 0;
  // `nice -n` adds to the runner's own.)
  test.each([
    { add: 0, process: 0, thread: 10, lowered: true },
    { add: 5, process: 5, thread: 15, lowered: true },
    { add: 15, process: 15, thread: 19, lowered: true },
    { add: 19, process: 19, thread: 19, lowered: false },
  ])('in a process at nice $process the thread runs at $thread (lowered: $lowered)', ({ add }) => {
    const processNice = Math.min(19, own() + add);
    const thread = Math.min(19, processNice + HASH_NICE);
    const expected = thread > processNice;
    const script = `
      const { HashThreads } = require(${JSON.stringify(join(__dirname, '..', '..', 'dist', 'src', 'core', 'hash-threads.js'))});
      const fs = require('node:fs');
      const nice = (tid) => { const s = fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]); };
      let told;
      const threads = new HashThreads(1, (l) => (told = l));
      threads.run({ op: 'hash', password: 'p', options: { algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 } }).then(async () => {
        const all = fs.readdirSync('/proc/self/task').map(Number);
        const main = nice(process.pid);
        const others = all.filter((t) => t !== process.pid).map(nice).filter((n) => n !== main);
        process.stdout.write(JSON.stringify({ told, main, others }));
        await threads.close();
      });`;
    const out = JSON.parse(execFileSync('nice', ['-n', String(add), process.execPath, '-e', script], { encoding: 'utf8' })) as { told: boolean; main: number; others: number[] };
    expect(out.main).toBe(processNice);
    expect(out.told).toBe(expected);
    // One thread apart from the process's own at most, the hashing thread, where it could go lower.
    expect(out.others).toEqual(expected ? [thread] : []);
  });

  test('never more threads than the hashes that may run at once, however many wait', async () => {
    const threads = new HashThreads(3);
    try {
      let most = 0;
      const jobs = Array.from({ length: 40 }, (_, i) =>
        threads.run({ op: 'hash', password: `p${i}`, options: { algorithm: ARGON2ID, ...SMALL } }).then((h) => {
          most = Math.max(most, threads.threads);
          return h;
        }),
      );
      const hashes = (await Promise.all(jobs)) as string[];
      expect(new Set(hashes).size).toBe(40);
      expect(most).toBe(3);
      const checks = await Promise.all(hashes.map((hash, i) => threads.run({ op: 'verify', hash, password: `p${i}` })));
      expect(checks.every((ok) => ok === true)).toBe(true);
      expect(threads.threads).toBe(3);
    } finally {
      await threads.close();
    }
    expect(threads.threads).toBe(0);
  });

  const COSTLY = { op: 'hash', password: 'p', options: { algorithm: ARGON2ID, memoryCost: 65536, timeCost: 8, parallelism: 1 } } as const;
  const QUICK = { op: 'hash', password: 'q', options: { algorithm: ARGON2ID, ...SMALL } } as const;
  const startPlain = (started: Worker[]) => (program: string, workerData: unknown) => {
    const worker = new Worker(program, { eval: true, workerData });
    started.push(worker);
    return worker;
  };

  test('a thread that dies under a job fails that job as unavailable; the job waiting behind it gets a new thread', async () => {
    const started: Worker[] = [];
    const threads = new HashThreads(1, undefined, startPlain(started));
    try {
      const first = threads.run(COSTLY);
      const second = threads.run(QUICK);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await started[0]!.terminate();
      await expect(first).rejects.toMatchObject({ code: 'unavailable', message: 'password hashing is unavailable; retry shortly' });
      await expect(second).resolves.toMatch(/^\$argon2id\$/);
      expect(started).toHaveLength(2);
    } finally {
      await threads.close();
    }
  });

  test('a thread that cannot start fails its job as unavailable (the reason kept for the log); the next job tries again', async () => {
    let refuse = true;
    const started: Worker[] = [];
    const threads = new HashThreads(1, undefined, (program, workerData) => {
      if (refuse) throw new Error('Resource temporarily unavailable');
      return startPlain(started)(program, workerData);
    });
    try {
      const err = await threads.run(QUICK).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'unavailable', message: 'password hashing is unavailable; retry shortly' });
      expect(String((err as AuthError).cause)).toContain('Resource temporarily unavailable');
      refuse = false;
      await expect(threads.run(QUICK)).resolves.toMatch(/^\$argon2id\$/);
    } finally {
      await threads.close();
    }
  });

  test('close fails the jobs running and those waiting for a thread', async () => {
    const threads = new HashThreads(1);
    const jobs = [threads.run(COSTLY), threads.run(QUICK), threads.run(QUICK)].map((job) => job.then(() => 'answered', (e: { code: string }) => e.code));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await threads.close();
    expect(await Promise.all(jobs)).toEqual(['unavailable', 'unavailable', 'unavailable']);
  });

  test('a thread keeps the process alive while it hashes, not once it idles', () => {
    // The built module in a process that never closes the threads: it must print the hash (kept
    // alive through it) and then exit by itself (not kept alive by an idle thread).
    const script = `
      const { HashThreads } = require(${JSON.stringify(join(__dirname, '..', '..', 'dist', 'src', 'core', 'hash-threads.js'))});
      new HashThreads(2).run(${JSON.stringify(QUICK)}).then((hash) => process.stdout.write(hash.slice(0, 10)));`;
    expect(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 })).toBe('$argon2id$');
  });

  test('a thread that stops under a check fails it as unavailable, not as a wrong password; the next check starts a thread again', async () => {
    // A check costly enough to be running when the threads are stopped.
    const hasher = new Argon2Hasher({ memoryCost: 65536, timeCost: 8, parallelism: 1, concurrency: 1, maxQueue: 4, newHashConcurrency: 1, lowPriority: true });
    const stored = await hasher.hash('p');
    const running = hasher.verify(stored, 'p');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await hasher.close();
    const err = await running.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('unavailable');
    expect(await hasher.verify(stored, 'p')).toBe(true);
    await hasher.close();
  });

  test('a dummy hash that failed is made again by the next unknown-user check', async () => {
    const hasher = new Argon2Hasher({ memoryCost: 65536, timeCost: 8, parallelism: 1, concurrency: 1, maxQueue: 4, newHashConcurrency: 1, lowPriority: true });
    const first = hasher.verifyDummy('p');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await hasher.close();
    await expect(first).rejects.toMatchObject({ code: 'unavailable' });
    await expect(hasher.verifyDummy('p')).resolves.toBeUndefined();
    await hasher.close();
  });
});

// AUTH_HASH_NICE: how far below the process the service's hashing threads go; 0 keeps hashing on
// the libuv pool at the process's priority.
test.each([
  { nice: '10', below: 10 },
  { nice: '3', below: 3 },
  { nice: '0', below: 0 },
])('AUTH_HASH_NICE=$nice: the service hashes $below nice values below the process, and stops its threads when it closes', async ({ nice, below }) => {
  const byNice = () => {
    const all = niceByThread();
    const target = Math.min(19, (all.get(process.pid) as number) + below);
    return [...all.values()].filter((n) => n === target).length;
  };
  const before = below > 0 ? byNice() : 0;
  const lines: string[] = [];
  const log = createLogger('info', { write: (line: string) => void lines.push(line) });
  const app = composeService(loadConfig({ AUTH_HASH_CONCURRENCY: '2', AUTH_HASH_NICE: nice }), { keys: createKeySet([generateEcKey()]), log });
  const running = await app.start('127.0.0.1:0');
  const auth = createClient(AuthService, `127.0.0.1:${running.port}`);
  try {
    const password = 'a passphrase long enough to pass';
    await auth.register({ username: 'hasher-user', password });
    const logins = await Promise.all([auth.login({ username: 'hasher-user', password }), auth.login({ username: 'hasher-user', password: 'not the passphrase at all' }).catch((e: { code: number }) => e.code)]);
    expect(logins[0]).toHaveProperty('accessToken');
    expect(logins[1]).toBe(16);
    if (below > 0) {
      // A new hash (Register) and two checks at once: up to the three slots of AUTH_HASH_CONCURRENCY=2.
      expect(byNice() - before).toBeGreaterThanOrEqual(1);
      expect(byNice() - before).toBeLessThanOrEqual(3);
    } else {
      // On the libuv pool: no thread of this process below its priority.
      const all = niceByThread();
      expect([...all.values()].every((n) => n === all.get(process.pid))).toBe(true);
    }
  } finally {
    auth.close();
    await running.close(0);
  }
  if (below > 0) await eventually(() => expect(byNice()).toBe(before));
  expect(lines.join('')).not.toContain('hash_priority_normal');
});
