import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseEnv, ROOT } from './process';

const page = readFileSync(join(ROOT, 'docs', 'production.md'), 'utf8');

/** The commands of docs/production.md's production-start block: each line's words before its comment. */
export function productionCommands(): string[][] {
  const block = /<!-- block: production-start -->\n```sh\n([\s\S]*?)```/.exec(page);
  if (!block) throw new Error('docs/production.md: no production-start block');
  return block[1]!
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter(Boolean)
    .map((line) => line.split(/\s+/));
}

/**
 * Runs `argv` exactly as written (no shell, no npm), waits for the start-up line, sends SIGTERM to
 * that very process, and resolves with its exit code and log lines.
 */
export async function startThenTerminate(argv: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; events: unknown[]; stderr: string }> {
  const [command, ...args] = argv;
  const child = spawn(command === 'node' ? process.execPath : command!, args, { cwd, env: { ...baseEnv, ...env } });
  const events: unknown[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let buffer = '';
  let terminated = false;
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = JSON.parse(buffer.slice(0, i)) as { event?: string };
      buffer = buffer.slice(i + 1);
      events.push(line.event);
      if (line.event === 'started' && !terminated) {
        terminated = true;
        child.kill('SIGTERM');
      }
    }
  });
  // A service that neither starts nor stops within 40 s is killed: the caller sees SIGKILL and the
  // lines it wrote, not a test timeout.
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, events, stderr };
}
