// Usage: node scripts/release/prune-runtime.mjs <stage-dir>
//
// Trims the staged production node_modules to what the driver loads at run time on a GX (glibc linux-arm armv7,
// linux-arm64, linux-x64):
//  1. keeps only the packages reachable from the app's dependencies the way require() resolves them, skipping
//     packages that are only needed to compile addons;
//  2. inside the kept packages drops other platforms' prebuilds (and musl/armv6 ones), build leftovers, sources,
//     docs, tests and type declarations.
// Prints one summary line. The emulated check (scripts/release/gx-check.sh) is the safety net: if something
// needed at run time is pruned, the release fails it.
import fs from 'node:fs';
import path from 'node:path';

const stage = path.resolve(process.argv[2] ?? '');
const nm = path.join(stage, 'node_modules');
if (!fs.existsSync(path.join(stage, 'package.json')) || !fs.existsSync(nm)) {
  console.error(`prune: ${stage} has no package.json and node_modules`);
  process.exit(2);
}

/**
 * Only used to build addons (socketcan is cross-built before pruning), or optional natives never built; type
 * declarations (@types/*) are skipped too.
 */
const BUILD_ONLY = new Set(['node-gyp', 'nan', 'node-addon-api', 'patch-package', 'usocket']);
const KEEP_PLATFORMS = new Set(['linux-arm', 'linux-arm64', 'linux-x64']);
const DROP_PREBUILD = /musl|armv6/;
const DROP_TOP_DIR = /^(test|tests|__tests__|example|examples|sample|samples|doc|docs|\.github|benchmark|benchmarks|patches|man|coverage)$/;
const DROP_FILE =
  /(\.(c|cc|cpp|h|hpp|gyp|gypi|map|ts|mts|cts|md|markdown|txt|yml|yaml|html|o|a|mk)|^(Makefile|\.npmignore|\.eslintrc.*|\.prettierrc.*|\.editorconfig|tsconfig.*\.json|\.travis\.yml|CHANGELOG.*|HISTORY.*))$/i;
const KEEP_FILE = /^(LICEN[CS]E|COPYING|NOTICE)/i;
const LOADABLE = /\.(js|cjs|mjs|json|node|wasm)$/;

const reached = new Set();

function packageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === stage || !dir.startsWith(stage)) return undefined;
  }
}

function visit(dir) {
  if (reached.has(dir)) return;
  reached.add(dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const deps = { ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies };
  for (const name of Object.keys(deps)) {
    if (BUILD_ONLY.has(name) || name.startsWith('@types/')) continue;
    const found = packageDir(name, dir);
    if (found) visit(found);
  }
}
const rootPkg = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'));
reached.add(stage);
for (const name of Object.keys({ ...rootPkg.dependencies, ...rootPkg.optionalDependencies })) {
  const found = packageDir(name, stage);
  if (found) visit(found);
}

let removedPackages = 0;
let removedFiles = 0;
const remove = (p) => {
  fs.rmSync(p, { recursive: true, force: true });
  removedFiles++;
};

function packagesIn(nmDir) {
  if (!fs.existsSync(nmDir)) return [];
  const out = [];
  for (const entry of fs.readdirSync(nmDir)) {
    if (entry.startsWith('.')) {
      remove(path.join(nmDir, entry)); // .bin, .package-lock.json: nothing on the GX runs npm
      continue;
    }
    if (entry.startsWith('@')) {
      for (const sub of fs.readdirSync(path.join(nmDir, entry))) out.push(path.join(nmDir, entry, sub));
    } else out.push(path.join(nmDir, entry));
  }
  return out;
}

function sweep(nmDir) {
  for (const dir of packagesIn(nmDir)) {
    if (!reached.has(dir)) {
      fs.rmSync(dir, { recursive: true, force: true });
      removedPackages++;
    } else sweep(path.join(dir, 'node_modules'));
  }
  if (fs.existsSync(nmDir)) {
    for (const entry of fs.readdirSync(nmDir)) {
      const p = path.join(nmDir, entry);
      if (entry.startsWith('@') && fs.readdirSync(p).length === 0) fs.rmdirSync(p);
    }
    if (fs.readdirSync(nmDir).length === 0) fs.rmdirSync(nmDir);
  }
}
sweep(nm);

function* files(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else yield p;
  }
}

function removeEmptyDirs(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) removeEmptyDirs(path.join(dir, e.name));
  }
  if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
}

function clean(pkgDir) {
  const nodeGyp = fs.existsSync(path.join(pkgDir, 'binding.gyp')); // before binding.gyp itself is dropped
  for (const e of fs.readdirSync(pkgDir, { withFileTypes: true })) {
    const p = path.join(pkgDir, e.name);
    if (e.name === 'node_modules') {
      for (const dep of packagesIn(p)) clean(dep);
      continue;
    }
    if (!e.isDirectory()) {
      if (DROP_FILE.test(e.name) && !KEEP_FILE.test(e.name)) remove(p);
      continue;
    }
    if (e.name === 'prebuilds') {
      for (const platform of fs.readdirSync(p)) {
        const pp = path.join(p, platform);
        if (!KEEP_PLATFORMS.has(platform)) remove(pp);
        else for (const f of fs.readdirSync(pp)) if (DROP_PREBUILD.test(f)) remove(path.join(pp, f));
      }
      continue;
    }
    if (e.name === 'build' && nodeGyp) {
      // node-gyp output: only build/Release/*.node is loaded. (Other packages ship JavaScript in build/.)
      for (const f of [...files(p)]) if (!/[\\/]Release[\\/][^\\/]+\.node$/.test(f)) remove(f);
      if (fs.existsSync(p)) removeEmptyDirs(p);
      continue;
    }
    if (DROP_TOP_DIR.test(e.name)) {
      remove(p);
      continue;
    }
    const all = [...files(p)];
    if (!all.some((f) => LOADABLE.test(f))) {
      remove(p); // src/, include/, native/ with C/C++ only
      continue;
    }
    for (const f of all) {
      const base = path.basename(f);
      if (DROP_FILE.test(base) && !KEEP_FILE.test(base)) remove(f);
    }
    if (fs.existsSync(p)) removeEmptyDirs(p);
  }
}
for (const dir of packagesIn(nm)) clean(dir);

console.log(`prune: kept ${reached.size - 1} packages, removed ${removedPackages} packages and ${removedFiles} files/dirs`);
