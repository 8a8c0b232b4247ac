#!/usr/bin/env node
// `npm run test:loaded`: the whole suite with every core kept busy by a CPU burner beside it, as
// on a shared CI machine. The suite asserts nothing on wall time; this shows it holds under load
// (and how long it takes then). Exit code: jest's.
'use strict';
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const burners = Array.from({ length: os.cpus().length }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
const started = Date.now();
const jest = spawn(process.execPath, [path.join(__dirname, '..', 'node_modules', 'jest', 'bin', 'jest.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
jest.on('close', (code) => {
  for (const b of burners) b.kill('SIGKILL');
  console.log(`npm test beside ${burners.length} CPU burners: ${((Date.now() - started) / 1000).toFixed(0)} s, exit ${code}`);
  process.exit(code ?? 1);
});
