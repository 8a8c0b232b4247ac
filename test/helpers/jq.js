#!/usr/bin/env node
// Used by the README walkthrough tests only where the real jq is not installed: `jq -r PATH`, with
// PATH a chain of `.field` and `[index]` steps (`.user.userId`, `.recoveryCodes[0]`).
'use strict';
const args = process.argv.slice(2);
const filter = args.find((a) => a.startsWith('.'));
if (!args.includes('-r') || !filter || !/^(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+$/.test(filter)) {
  process.stderr.write('this stand-in supports only: jq -r .field.field[index]\n');
  process.exit(2);
}
const steps = [...filter.matchAll(/\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]/g)].map((m) => m[1] ?? Number(m[2]));
let input = '';
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', () => {
  let value = JSON.parse(input);
  for (const step of steps) value = value === null || value === undefined ? undefined : value[step];
  process.stdout.write(`${value === undefined || value === null ? 'null' : typeof value === 'string' ? value : JSON.stringify(value)}\n`);
});
