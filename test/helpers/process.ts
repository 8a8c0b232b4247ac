import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const MAIN = join(ROOT, 'dist', 'src', 'main.js');
export const baseEnv = { PATH: process.env.PATH ?? '', AUTH_ADDRESS: '127.0.0.1:0', AUTH_SHUTDOWN_GRACE: '2' };

export interface Running {
  child: ChildProcessWithoutNullStreams;
  lines: Array<Record<string, unknown>>;
  started: Record<string, unknown>;
  exit: Promise<number | null>;
}

/**
 * Starts the built service (global setup builds it) and waits for its start-up line. `command`
 * runs something else that serves, e.g. the installed package's bin: `[path, 'serve']`. A process
 * that exits first, or has not started within `startMs`, fails the call with what it wrote (and is
 * killed), rather than leaving the test to hang until jest's own timeout says nothing of why.
 */
export function startProcess(env: Record<string, string>, command: { readonly argv: readonly string[]; readonly cwd: string } = { argv: [process.execPath, MAIN], cwd: ROOT }, startMs = 30_000): Promise<Running> {
  const [program, ...args] = command.argv;
  const child = spawn(program!, args, { env: { ...baseEnv, ...env }, cwd: command.cwd });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close', not 'exit': by then every line the process wrote has been read.
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        const line = JSON.parse(buffer.slice(0, i)) as Record<string, unknown>;
        buffer = buffer.slice(i + 1);
        lines.push(line);
        if (line.event === 'started') resolve({ child, lines, started: line, exit });
      }
    });
    void exit.then((code) => reject(new Error(`exited ${code} before starting: ${JSON.stringify(lines.at(-1))} ${stderr}`)));
    const late = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`not started after ${startMs} ms; it wrote: ${JSON.stringify(lines)} ${stderr}`));
    }, startMs);
    void exit.then(() => clearTimeout(late));
    child.stdout.on('data', () => {
      if (lines.some((l) => l.event === 'started')) clearTimeout(late);
    });
  });
}

/**
 * Sends `signal` and waits for the process to exit: its exit code. One that is still running
 * after `withinMs` is killed and fails the call with the lines it wrote (where its shutdown stopped).
 */
export async function stopProcess(running: Running, signal: NodeJS.Signals = 'SIGTERM', withinMs = 15_000): Promise<number | null> {
  running.child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      running.child.kill('SIGKILL');
      reject(new Error(`still running ${withinMs} ms after ${signal}; its last lines: ${JSON.stringify(running.lines.slice(-5))}`));
    }, withinMs);
  });
  try {
    return await Promise.race([running.exit, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the built service until it exits by itself (a start-up that fails); its exit code and JSON log lines. */
export async function runUntilExit(env: Record<string, string>, timeoutMs = 20_000): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; stderr: string }> {
  const child = spawn(process.execPath, [MAIN], { env: { ...baseEnv, ...env }, cwd: ROOT });
  let out = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, lines, stderr };
}
