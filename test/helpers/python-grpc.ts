import { spawn } from 'node:child_process';

/**
 * Debian's system Python, which `apt-get install python3-grpcio` extends: a C-core gRPC client,
 * the kind of caller grpc-js tests never are. (A `python3` earlier on PATH, pyenv's say, lacks it.)
 */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/**
 * Runs a Python script (stdin) with argv, stops it after `timeoutMs`, and returns what it printed:
 * the scripts print one JSON object per line.
 */
export function runPython(script: string, args: readonly string[], timeoutMs = 15_000): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, ['-', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>), stderr: err });
      } catch (parseErr) {
        reject(new Error(`python printed something else: ${out}\n${err}`, { cause: parseErr }));
      }
    });
    child.stdin.end(script);
  });
}
