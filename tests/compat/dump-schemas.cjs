// Dumps the OpenAPI documents that @meshery/schemas ships compiled into JavaScript
// (dist/constructs/<version>/<construct>/*Schema.js) as one JSON file, for
// `cargo xtask compat`. Usage: node dump-schemas.cjs <tarball> <integrity> <out.json>
// The tarball is checked against the pinned integrity before anything in it runs.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const [tarball, integrity, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node dump-schemas.cjs <tarball> <integrity> <out.json>');
  process.exit(2);
}
const actual = 'sha512-' + crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64');
if (actual !== integrity) {
  console.error(`${tarball}: integrity ${actual}, expected ${integrity}`);
  process.exit(1);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshery-schemas-'));
try {
  execFileSync('tar', ['xzf', tarball, '-C', dir]);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package/package.json'), 'utf8'));
  const constructs = path.join(dir, 'package/dist/constructs');
  const documents = [];
  for (const version of fs.readdirSync(constructs).sort()) {
    for (const construct of fs.readdirSync(path.join(constructs, version)).sort()) {
      const folder = path.join(constructs, version, construct);
      for (const file of fs.readdirSync(folder).sort()) {
        if (!file.endsWith('Schema.js')) continue;
        const loaded = require(path.join(folder, file));
        const doc = loaded && loaded.default ? loaded.default : loaded;
        if (!doc || typeof doc.openapi !== 'string' || !doc.paths) continue;
        documents.push({ version, construct, file, info: doc.info || {}, paths: doc.paths });
      }
    }
  }
  fs.writeFileSync(out, JSON.stringify({ name: pkg.name, version: pkg.version, documents }));
  console.log(`${pkg.name}@${pkg.version}: ${documents.length} OpenAPI documents -> ${out}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
