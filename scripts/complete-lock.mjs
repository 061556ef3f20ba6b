#!/usr/bin/env node
/**
 * The npm registry this project is built against serves only the linux builds of packages that ship one
 * optional package per platform (biome, rollup), so `npm install` leaves the others out of package-lock.json
 * and `npm ci` then calls the lock out of sync. This adds an entry for each missing platform package, with the
 * os/cpu/libc its name states, so `npm ci` validates the lock and skips them as foreign platforms, as it would
 * with a complete lock. Run it after `npm install` changes the lock: `node scripts/complete-lock.mjs`.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const pkgs = lock.packages;
const CPUS = new Set(['arm', 'arm64', 'x64', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x']);
let added = 0;
for (const [, entry] of Object.entries(pkgs)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    if (pkgs[`node_modules/${name}`]) continue;
    const m = /^@[^/]+\/(?:cli-|rollup-)?([a-z0-9]+)-([a-z0-9]+)(?:-(.*))?$/.exec(name);
    if (!m || !CPUS.has(m[2])) continue; // not a per-platform package: leave it to npm
    const rest = m[3] ?? '';
    const libc = rest.includes('musl') ? ['musl'] : rest.includes('gnu') ? ['glibc'] : undefined;
    pkgs[`node_modules/${name}`] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      os: [m[1]],
      cpu: [m[2]],
      ...(libc ? { libc } : {}),
    };
    added++;
  }
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lock: ${added} platform package entr${added === 1 ? 'y' : 'ies'} added`);
