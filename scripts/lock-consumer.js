#!/usr/bin/env node
// Rewrites the lockfiles of the projects that install the packed package as a consumer would
// (test/fixtures/consumer, examples/backend-starter): packs the package, installs each project
// from its package.json in a scratch directory, and copies the lockfile back without the
// tarball's integrity (the tarball changes with every build; the tests install the one they pack).
// Run it after changing the package's dependencies or a project's package.json; commit the result.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const PROJECTS = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['test/fixtures/consumer', 'examples/backend-starter'];
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-consumer-'));
execFileSync(npm, ['pack', '--silent', '--pack-destination', scratch], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
const tarball = path.join(scratch, fs.readdirSync(scratch).find((f) => f.endsWith('.tgz')));

for (const project of PROJECTS) {
  const from = path.join(ROOT, project);
  if (!fs.existsSync(path.join(from, 'package.json'))) continue;
  const work = path.join(scratch, project.replace(/\W/g, '_'));
  fs.mkdirSync(work);
  fs.copyFileSync(path.join(from, 'package.json'), path.join(work, 'package.json'));
  // The tarball goes where the project's dependency says: "grpc-auth-service": "file:<path>".
  const spec = JSON.parse(fs.readFileSync(path.join(from, 'package.json'), 'utf8')).dependencies['grpc-auth-service'];
  const at = path.join(work, spec.replace(/^file:/, ''));
  fs.mkdirSync(path.dirname(at), { recursive: true });
  fs.copyFileSync(tarball, at);
  // Starting from the lockfile there keeps every pin that still fits: only what changed moves.
  // The package's own entry goes, so its dependencies are read again from the tarball.
  if (fs.existsSync(path.join(from, 'package-lock.json'))) {
    const lock = JSON.parse(fs.readFileSync(path.join(from, 'package-lock.json'), 'utf8'));
    delete lock.packages['node_modules/grpc-auth-service'];
    fs.writeFileSync(path.join(work, 'package-lock.json'), JSON.stringify(lock));
  }
  execFileSync(npm, ['install', '--package-lock-only', '--no-audit', '--no-fund', '--silent'], { cwd: work, stdio: 'inherit' });
  fs.writeFileSync(path.join(from, 'package-lock.json'), JSON.stringify(withoutTarballIntegrity(JSON.parse(fs.readFileSync(path.join(work, 'package-lock.json'), 'utf8'))), null, 2) + '\n');
  console.log(`${project}/package-lock.json written`);
}
fs.rmSync(scratch, { recursive: true, force: true });

function withoutTarballIntegrity(lock) {
  const entry = lock.packages['node_modules/grpc-auth-service'];
  delete entry.integrity;
  return lock;
}
