'use strict';
// Writes a run's figures: bench/results/latest.json and latest.md, and docs/performance.md's table.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { h2loadAvailable, median, ROOT, ROUNDS, SECONDS } = require('./lib/measure.js');
const { peersTable, perCoreTable } = require('./peers.js');

function hashConcurrencyNote(results) {
  const { argon2idParallelPerSecond: parallel, argon2idMs } = results.floors;
  return `${results.hashConcurrency} argon2id hashes at a time: ${f(parallel, 0)} hashes/s (${f(parallel / (results.hashConcurrency / (argon2idMs / 1000)))} × twice one hash's rate: two contend for the cores and memory)`;
}

const f = (x, d = 2) => (typeof x === 'number' ? x.toFixed(d) : String(x));

function write(results) {
  const versions = {
    node: process.version,
    grpcJs: require('@grpc/grpc-js/package.json').version,
    h2load: h2loadAvailable ? execFileSync('h2load', ['--version'], { encoding: 'utf8' }).split('\n')[0] : 'not found',
  };
  const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` };
  const json = { date: new Date().toISOString(), command: 'npm run bench', rounds: ROUNDS, secondsPerRound: SECONDS, machine, versions, ...results };
  const outDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  const rows = results.figures.map((r) => {
    const measured = r.ratio !== undefined ? `${f(r.ratio)} × baseline (${f(r.value, 0)} vs ${f(r.baseline, 0)} ${r.unit}; rounds ${f(r.spread[0])}–${f(r.spread[1])})` : r.baseline !== undefined ? `${f(r.value, 1)} ${r.unit} (${r.baselineName ?? 'baseline'} ${f(r.baseline, 1)}; rounds ${f(r.spread[0], 1)}–${f(r.spread[1], 1)})` : `${f(r.value)} ${r.unit}`
    const noted = r.note ? `${measured}; ${r.note}` : measured;
    if (r.perRound) {
      // A CPU figure against the floor server (bench/calls.js): judged round by round.
      const judged = `${f(median(r.perRound))} × its limit, round by round (rounds ${f(Math.min(...r.perRound))}–${f(Math.max(...r.perRound))}); ${noted}`;
      return `| ${r.name} | ${judged} | ≤ 1 × (${r.limitNote}; by medians ${f(r.limit, 1)}) | ${r.met ? 'met' : '**not met**'} |`;
    }
    const target = r.target !== undefined ? `≥ ${r.target}` : `≤ ${f(r.limit, 1)}${r.limitNote ? ` (${r.limitNote})` : ''}`;
    return `| ${r.name} | ${noted} | ${target} | ${r.met ? 'met' : '**not met**'} |`;
  });
  const md = `# Benchmark results

Command: \`npm run bench\` (calls/s figures: ${2 * ROUNDS} rounds of ${SECONDS / 2} s; CPU-per-call and login figures: ${ROUNDS} rounds; baseline and figure interleaved ABBA). Date: ${json.date}.
Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform}. Node ${versions.node}, grpc-js ${versions.grpcJs}, ${versions.h2load}.
Load: ${results.generator}.
Raw floors (this process): ES256 verify ${f(results.floors.es256VerifyUs, 1)} µs, ES256 sign ${f(results.floors.es256SignUs, 1)} µs, SHA-256 ${f(results.floors.sha256Us, 2)} µs, argon2id (19 MiB, t=2) ${f(results.floors.argon2idMs, 1)} ms; ${hashConcurrencyNote(results)}.

| Figure | Measured (median; spread over rounds) | Target | |
|---|---|---|---|
${rows.join('\n')}
${peersSection(results)}`;
  fs.writeFileSync(path.join(outDir, 'latest.md'), md);
  console.log(md);
  // docs/performance.md's table is this run's (test/docs/bench-results.test.ts keeps them in step).
  const readmePath = path.join(ROOT, 'docs', 'performance.md');
  const readme = fs.readFileSync(readmePath, 'utf8');
  const table = `| Figure | Measured (median; spread over rounds) | Target | |\n|---|---|---|---|\n${rows.join('\n')}\n`;
  const marked = /(<!-- bench:table -->\n)[\s\S]*?(<!-- \/bench:table -->)/;
  let page = readme.replace(marked, (_, open, close) => `${open}${table}${close}`);
  // Without the peers (no h2load or no PostgreSQL), their tables are emptied, not left from a run before.
  const peers = results.peers?.length ? peersTable(results) : '';
  const perCore = results.peers?.length ? perCoreTable(results).table : '';
  page = page.replace(/(<!-- bench:peers -->\n)[\s\S]*?(<!-- \/bench:peers -->)/, (_, open, close) => `${open}${peers}${close}`);
  page = page.replace(/(<!-- bench:per-core -->\n)[\s\S]*?(<!-- \/bench:per-core -->)/, (_, open, close) => `${open}${perCore}${close}`);
  fs.writeFileSync(readmePath, page);
}

/** The peers beside the service (bench/peers.js): the side-by-side table and the per-core one. */
function peersSection(results) {
  if (!results.peers?.length) return '';
  const { table, sources } = perCoreTable(results);
  const versions = Object.entries(results.peerVersions ?? {}).map(([k, v]) => `${k} ${v}`).join(', ');
  return `
## Beside the peers (${versions}; h2load, ${ROUNDS} rounds of ${SECONDS / 2} s, order turning each round)

${peersTable(results)}
### Per core: calls per second of one fully busy core (1,000,000 ÷ CPU µs per call), next to published figures

${table}
Published figures are their authors', on their hardware: ${sources.replace(/\n- /g, '; ').replace(/^- /, '')}.
`;
}

module.exports = { write, peersSection };
