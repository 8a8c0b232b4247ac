#!/usr/bin/env node
// Used by the README walkthrough test only where the real jq is not installed: `jq -r .field`.
'use strict';
const args = process.argv.slice(2);
const filter = args.find((a) => a.startsWith('.'));
if (!args.includes('-r') || !filter || !/^\.[A-Za-z_][A-Za-z0-9_]*$/.test(filter)) {
  process.stderr.write('this stand-in supports only: jq -r .field\n');
  process.exit(2);
}
let input = '';
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', () => {
  const value = JSON.parse(input)[filter.slice(1)];
  process.stdout.write(`${value === undefined ? 'null' : typeof value === 'string' ? value : JSON.stringify(value)}\n`);
});
