import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AuthError } from '../errors.js';
import { moduleDir } from '../module-dir.js';

/**
 * How much lower than the main thread the hashing threads run by default (AUTH_HASH_NICE): Linux
 * nice +10 over the process's own (at most 19), about a tenth of the main thread's share of a
 * core they both want.
 */
export const HASH_NICE = 10;

/** One job for a hashing thread: an argon2 hash, or the check of a password against one. */
export type HashJob =
  | { readonly op: 'hash'; readonly password: string; readonly options: { algorithm: number; memoryCost: number; timeCost: number; parallelism: number } }
  | { readonly op: 'verify'; readonly hash: string; readonly password: string };

/** What a thread answers: the result, or the message of what @node-rs/argon2 threw (an unparseable hash). */
type Reply = { readonly ok: string | boolean } | { readonly error: string };

/** What @node-rs/argon2 threw for a job's input (a stored hash it cannot parse): an answer, not an outage. */
export class HashInputError extends Error {
  override readonly name = 'HashInputError';
}

/** Starts a thread running `program` with `workerData`; replaceable in tests (a thread that cannot start). */
export type StartThread = (program: string, workerData: unknown) => Worker;

const startThread: StartThread = (program, workerData) =>
  // No inherited Node options: the program is CommonJS whatever the process's defaults, and
  // preloaded modules (--require, an APM agent) are not loaded again in every thread.
  new Worker(program, { eval: true, workerData, execArgv: [], stdout: false, stderr: false });

// The thread's whole program, plain CommonJS so it runs the same from the CJS and ESM builds and
// under the tests. On Linux a nice value belongs to the thread, so only this thread is lowered
// (from the one it started with, the main thread's); elsewhere setpriority(0) would lower the
// whole process, so it is left alone there.
const PROGRAM = `
const { parentPort, workerData } = require('node:worker_threads');
let lowered = false;
if (process.platform === 'linux') {
  try {
    const os = require('node:os');
    const own = os.getPriority(0);
    const nice = Math.min(19, own + workerData.nice);
    if (nice > own) { os.setPriority(nice); lowered = true; }
  } catch {}
}
const { hashSync, verifySync } = require(workerData.argon2);
parentPort.postMessage({ lowered });
parentPort.on('message', (job) => {
  let reply;
  try { reply = { ok: job.op === 'hash' ? hashSync(job.password, job.options) : verifySync(job.hash, job.password) }; }
  catch (err) { reply = { error: err instanceof Error ? err.message : String(err) }; }
  parentPort.postMessage(reply);
});
`;

let argon2Path: string | undefined;

interface Task {
  readonly job: HashJob;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  task: Task | undefined;
}

/**
 * Password hashing on worker threads of their own, each running below the main thread's priority
 * (HASH_NICE), so hashes take the cores the event loop leaves: a flood of logins slows other
 * logins, not the token checks beside them. At most `size` threads, started as hashes need them
 * and kept until `close`; jobs past `size` wait in order (the callers' limiters bound how many).
 * A thread keeps the process alive while it hashes, never while it idles. A thread that dies, or
 * cannot start, fails its job with `unavailable` (the attempt is not counted, a retry is safe);
 * the next job starts a new one.
 */
export class HashThreads {
  private readonly slots = new Set<Slot>();
  private readonly idle: Slot[] = [];
  private readonly waiting: Task[] = [];
  private loweredReported = false;

  /**
   * `nice`: how many nice values below the process the threads go. `onPriority(lowered)` is told
   * once, when the first thread has started, whether it runs below the main thread.
   */
  constructor(
    private readonly size: number,
    private readonly onPriority?: (lowered: boolean) => void,
    private readonly startWith: StartThread = startThread,
    private readonly nice: number = HASH_NICE,
  ) {}

  /** Threads running now (started and not closed). */
  get threads(): number {
    return this.slots.size;
  }

  /**
   * Runs `job` on a free thread, starting one if fewer than `size` run. Rejects with HashInputError
   * for input argon2 refuses (a hash it cannot parse), with `unavailable` when no thread could do it.
   */
  run(job: HashJob): Promise<string | boolean> {
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.dispatch();
    }).then((reply) => {
      if ('error' in reply) throw new HashInputError(reply.error);
      return reply.ok;
    });
  }

  /** Stops every thread; jobs running or waiting then fail with `unavailable`. Later jobs start threads again. */
  async close(): Promise<void> {
    const slots = [...this.slots];
    this.slots.clear();
    this.idle.length = 0;
    for (const task of this.waiting.splice(0)) task.reject(stopped('the hasher closed'));
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let slot = this.idle.pop();
      if (!slot && this.slots.size < this.size) {
        try {
          slot = this.start();
        } catch (err) {
          // No thread (no module to load, no thread the system will give): this job, not a login's answer.
          (this.waiting.shift() as Task).reject(stopped(err instanceof Error ? err.message : String(err)));
          continue;
        }
      }
      if (!slot) return;
      const task = this.waiting.shift() as Task;
      slot.task = task;
      slot.worker.ref();
      slot.worker.postMessage(task.job);
    }
  }

  private start(): Slot {
    argon2Path ??= createRequire(join(moduleDir, 'core', 'hash-threads.js')).resolve('@node-rs/argon2');
    const worker = this.startWith(PROGRAM, { nice: this.nice, argon2: argon2Path });
    const slot: Slot = { worker, task: undefined };
    this.slots.add(slot);
    let started = false;
    worker.on('message', (message: Reply | { lowered: boolean }) => {
      if (!started) {
        started = true;
        if (!this.loweredReported) {
          this.loweredReported = true;
          this.onPriority?.((message as { lowered: boolean }).lowered);
        }
        return;
      }
      const task = slot.task;
      slot.task = undefined;
      if (this.slots.has(slot)) {
        // Idle: the thread no longer keeps the process alive (a message listener refs it).
        worker.unref();
        this.idle.push(slot);
      }
      task?.resolve(message as Reply);
      this.dispatch();
    });
    const lost = (why: string) => {
      const wasOurs = this.slots.delete(slot);
      const at = this.idle.indexOf(slot);
      if (at >= 0) this.idle.splice(at, 1);
      const task = slot.task;
      slot.task = undefined;
      task?.reject(stopped(why));
      if (wasOurs) this.dispatch();
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    // After the listeners (adding a 'message' listener refs the thread): idle until a job comes.
    worker.unref();
    return slot;
  }
}

/** A job no thread could finish: the same public answer whatever the reason, the reason for the log. */
function stopped(why: string): AuthError {
  return new AuthError('unavailable', 'password hashing is unavailable; retry shortly', { cause: new Error(`password hashing thread: ${why}`) });
}
