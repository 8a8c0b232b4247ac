import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './process';

/**
 * Runs the docs' walkthroughs verbatim against the built service. grpcurl itself is a Go binary no
 * registry here ships, so a stand-in that speaks server reflection like grpcurl takes its place
 * (test/helpers/grpcurl.js); jq likewise when it is missing.
 */

/**
 * The fenced block under `<!-- block: id -->` in `file` (README.md or a page of docs/). Every
 * ```sh block of the docs carries such a marker, and test/docs/catalogue.test.ts checks that a
 * test names each one.
 */
export function docBlock(file: string, id: string): string {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const match = new RegExp(`<!-- block: ${id} -->\n\`\`\`\\w*\n([\\s\\S]*?)\`\`\``).exec(text);
  if (!match) throw new Error(`${file} has no block ${id}`);
  return match[1]!;
}

/** A PATH directory with grpcurl (and jq when missing). */
function toolDir(): string {
  const bin = mkdtempSync(join(tmpdir(), 'walkthrough-bin-'));
  symlinkSync(join(ROOT, 'test', 'helpers', 'grpcurl.js'), join(bin, 'grpcurl'));
  if (spawnSync('jq', ['--version']).status !== 0) symlinkSync(join(ROOT, 'test', 'helpers', 'jq.js'), join(bin, 'jq'));
  return bin;
}

/** Runs a walkthrough script with its `A=127.0.0.1:50051` pointed at `address`; stderr joins stdout in order. */
export function runWalkthrough(script: string, address: string): string {
  if (!script.includes('A=127.0.0.1:50051\n')) throw new Error('the walkthrough does not set A=127.0.0.1:50051');
  const result = spawnSync('bash', ['-c', 'exec 2>&1\n' + script.replace('A=127.0.0.1:50051\n', `A=${address}\n`)], {
    env: { ...process.env, PATH: `${toolDir()}:${process.env.PATH ?? ''}` },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return result.stdout;
}

/** Each step must appear in `out`, in order. */
export function expectSteps(out: string, steps: readonly string[]): void {
  let at = 0;
  for (const step of steps) {
    const found = out.indexOf(step, at);
    if (found < 0) throw new Error(`walkthrough output lacks, after position ${at}: ${step}\n---\n${out}`);
    at = found + step.length;
  }
}

/** Runs the admin walkthrough's `users add` line (the CLI as `npm run cli` runs it, without the build) in a new directory; returns the users file. */
export function bootstrapAdmin(): string {
  const addLine = docBlock('docs/accounts.md', 'admin-bootstrap').split('\n').find((l) => l.includes('users add'))!;
  const dir = mkdtempSync(join(tmpdir(), 'walkthrough-admin-'));
  const added = spawnSync('bash', ['-c', addLine.replace('npm run --silent cli --', `${process.execPath} ${join(ROOT, 'dist', 'src', 'cli', 'main.js')}`)], { cwd: dir, encoding: 'utf8' });
  if (added.stdout !== 'added root to users\n') throw new Error(`users add failed: ${added.stderr}`);
  return join(dir, 'users');
}
