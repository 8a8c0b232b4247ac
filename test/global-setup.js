// The process-level tests run the built service (dist/), as the README's production start does,
// and the package tests pack it: both builds, CommonJS (dist/src) and ES modules (dist/esm).
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');

module.exports = () => {
  const root = join(__dirname, '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, [join(root, 'scripts', 'build-esm.js')], { cwd: root, stdio: 'inherit' });
};
