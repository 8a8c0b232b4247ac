#!/usr/bin/env node
// The ES module build (`npm run build` runs it after the CommonJS one): tsc into dist/esm, marked
// as ES modules, with src/module-dir.js in its import.meta form. The four entry points then load
// the ES module builds of @bufbuild/protobuf and @grpc/grpc-js's peers in an ESM app, so an app
// that imports its own generated code (ESM) and this package shares one copy of the runtime.
// Type declarations are the CommonJS build's (dist/src/*.d.ts): the same API.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const out = path.join(root, 'dist', 'esm');
fs.rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.esm.json')], { stdio: 'inherit' });
fs.writeFileSync(path.join(out, 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
fs.writeFileSync(
  path.join(out, 'src', 'module-dir.js'),
  `// ES module form of src/module-dir.ts (written by scripts/build-esm.js).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
export const moduleDir = dirname(fileURLToPath(import.meta.url));
`,
);
fs.rmSync(path.join(out, 'src', 'module-dir.js.map'), { force: true });
