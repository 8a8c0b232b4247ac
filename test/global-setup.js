// The process-level tests run the built service (dist/), exactly as `npm start` does.
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');

module.exports = () => {
  execFileSync(process.execPath, [join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: join(__dirname, '..'),
    stdio: 'inherit',
  });
};
