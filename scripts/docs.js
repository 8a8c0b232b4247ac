#!/usr/bin/env node
// `npm run docs`: writes the tables of docs/ that are generated from code (the configuration
// table, from the settings in src/config.ts) between their markers. test/docs/error-catalogue.test.ts
// fails when the docs and the code differ.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const { configTable } = require(path.join(ROOT, 'dist', 'src', 'config.js'));

const file = path.join(ROOT, 'docs', 'configuration.md');
const readme = fs.readFileSync(file, 'utf8');
const replaced = readme.replace(/<!-- config:table -->\n[\s\S]*?\n<!-- \/config:table -->/, `<!-- config:table -->\n${configTable()}\n<!-- /config:table -->`);
if (replaced === readme) console.log('docs/configuration.md is up to date');
else {
  fs.writeFileSync(file, replaced);
  console.log('docs/configuration.md: configuration table rewritten');
}
