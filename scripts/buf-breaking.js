#!/usr/bin/env node
// `npm run lint:breaking [-- <git ref>]`: buf breaking (FILE rules, buf.yaml) of proto/ against a
// release: the newest v* tag unless a ref is given. Before the first tag there is nothing to compare.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const ref = process.argv[2] ?? execFileSync('git', ['tag', '--list', 'v*', '--sort=-v:refname'], { cwd: ROOT, encoding: 'utf8' }).split('\n')[0];
if (!ref) {
  console.log('buf breaking: no release tag yet, nothing to compare with');
  process.exit(0);
}
console.log(`buf breaking: proto/ against ${ref}`);
const sha = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
const run = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'buf'), ['breaking', '--against', `.git#ref=${sha}`], { cwd: ROOT, stdio: 'inherit' });
process.exit(run.status ?? 1);
