/**
 * The release build: pruning node_modules to the GX platforms, socketcan's per-CPU addon loader and, with
 * RELEASE_TESTS=1 (about 2–4 minutes: npm install, three cross builds, Node under qemu), `npm run package` and
 * the emulated check of the tarball on armv7 and arm64 (scripts/release/gx-check.sh).
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'release-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function write(path: string, text = ''): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

const pkg = (name: string, deps: Record<string, string> = {}, extra: object = {}) =>
  JSON.stringify({ name, version: '1.0.0', dependencies: deps, ...extra });

describe('pruning node_modules for the GX', () => {
  const stage = join(work, 'stage');
  const nm = join(stage, 'node_modules');
  write(join(stage, 'package.json'), pkg('app', { addon: '1', socketcan: '1' }));
  write(join(nm, 'addon/package.json'), pkg('addon', { '@types/node': '1', helper: '1' }));
  write(join(nm, 'addon/index.js'), 'module.exports = 1;');
  write(join(nm, 'addon/README.md'), '# readme');
  write(join(nm, 'addon/LICENSE'), 'MIT');
  write(join(nm, 'addon/index.d.ts'), 'export {};');
  write(join(nm, 'addon/test/addon.test.js'), '');
  write(join(nm, 'addon/src/addon.cc'), '');
  for (const f of [
    'linux-arm/addon.armv7.glibc.node',
    'linux-arm/addon.armv7.musl.node',
    'linux-arm/addon.armv6.glibc.node',
    'linux-arm64/addon.armv8.glibc.node',
    'linux-x64/addon.glibc.node',
    'darwin-x64+arm64/addon.node',
    'win32-x64/addon.node',
    'android-arm/addon.node',
  ]) {
    write(join(nm, 'addon/prebuilds', f), 'elf');
  }
  write(join(nm, 'helper/package.json'), pkg('helper'));
  write(join(nm, 'helper/build/index.js'), ''); // compiled JavaScript, as mqtt ships it
  write(join(nm, 'helper/build/index.d.ts'), '');
  write(join(nm, '@types/node/package.json'), pkg('@types/node'));
  write(join(nm, 'socketcan/package.json'), pkg('socketcan', { 'node-gyp': '1', nan: '1', xml2js: '1' }));
  write(join(nm, 'socketcan/binding.gyp'), '{}');
  write(join(nm, 'socketcan/dist/socketcan.js'), '');
  write(join(nm, 'socketcan/build/Makefile'), '');
  write(join(nm, 'socketcan/build/Release/obj.target/can.o'), '');
  write(join(nm, 'socketcan/build/Release/can.node'), 'elf');
  write(join(nm, 'socketcan/build/Release/.deps/can.node.d'), '');
  write(join(nm, 'socketcan/build/config.gypi'), '{}');
  write(join(nm, 'node-gyp/package.json'), pkg('node-gyp', { tar: '1' }));
  write(join(nm, 'tar/package.json'), pkg('tar'));
  write(join(nm, 'nan/package.json'), pkg('nan'));
  write(join(nm, 'xml2js/package.json'), pkg('xml2js'));
  write(join(nm, 'xml2js/lib/xml2js.js'), '');
  write(join(nm, 'unused/package.json'), pkg('unused'));
  write(join(nm, '.package-lock.json'), '{}');
  const r = spawnSync(process.execPath, ['scripts/release/prune-runtime.mjs', stage], { cwd: REPO, encoding: 'utf8' });
  const has = (p: string) => existsSync(join(nm, p));

  test('reports what it kept and removed', () => {
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^prune: kept 4 packages, removed 5 packages and \d+ files\/dirs/);
  });

  test('keeps the packages the app loads at run time and drops build-only, type-only and unused ones', () => {
    for (const p of ['addon', 'helper', 'socketcan', 'xml2js']) expect(has(`${p}/package.json`), p).toBe(true);
    for (const p of ['node-gyp', 'tar', 'nan', '@types', 'unused', '.package-lock.json']) expect(has(p), p).toBe(false);
  });

  test('keeps only the glibc armv7, arm64 and x64 prebuilds', () => {
    expect(has('addon/prebuilds/linux-arm/addon.armv7.glibc.node')).toBe(true);
    expect(has('addon/prebuilds/linux-arm64/addon.armv8.glibc.node')).toBe(true);
    expect(has('addon/prebuilds/linux-x64/addon.glibc.node')).toBe(true);
    for (const p of [
      'linux-arm/addon.armv7.musl.node',
      'linux-arm/addon.armv6.glibc.node',
      'darwin-x64+arm64',
      'win32-x64',
      'android-arm',
    ]) {
      expect(has(`addon/prebuilds/${p}`), p).toBe(false);
    }
  });

  test('drops docs, tests, sources and declarations but keeps licences and built addons', () => {
    expect(has('addon/index.js')).toBe(true);
    expect(has('addon/LICENSE')).toBe(true);
    for (const p of ['addon/README.md', 'addon/index.d.ts', 'addon/test', 'addon/src', 'socketcan/build/Makefile']) {
      expect(has(p), p).toBe(false);
    }
    expect(has('socketcan/build/Release/can.node')).toBe(true);
    expect(has('socketcan/build/Release/obj.target')).toBe(false);
    expect(has('socketcan/build/Release/.deps')).toBe(false);
    expect(has('socketcan/build/config.gypi')).toBe(false);
    expect(has('socketcan/binding.gyp')).toBe(false);
  });

  test("keeps a package's build/ directory of JavaScript; only node-gyp's build/ is cut to Release/*.node", () => {
    expect(has('helper/build/index.js')).toBe(true);
    expect(has('helper/build/index.d.ts')).toBe(false);
  });
});

describe("socketcan's addon loader in the release", () => {
  const loaderPath = join(work, 'socketcan/dist/batterybank-native.cjs');
  mkdirSync(dirname(loaderPath), { recursive: true });
  copyFileSync(join(REPO, 'scripts/release/socketcan-native.cjs'), loaderPath);
  const load = createRequire(import.meta.url)(loaderPath) as (name: string) => unknown;
  // A real N-API addon for this machine stands in for can.node (serialport ships prebuilt ones).
  const require = createRequire(join(REPO, 'package.json'));
  const bindings = dirname(require.resolve('@serialport/bindings-cpp/package.json'));
  const addon = join(bindings, 'prebuilds/linux-x64/@serialport+bindings-cpp.glibc.node');
  const platformDir = join(work, 'socketcan/prebuilds', `${process.platform}-${process.arch}`);

  test('says which platform has no build when there is none', () => {
    expect(() => load('can')).toThrow(`socketcan: no can.node for ${process.platform}-${process.arch}`);
  });

  test('loads the addon built for this platform from prebuilds/<platform>-<arch>/', () => {
    mkdirSync(platformDir, { recursive: true });
    copyFileSync(addon, join(platformDir, 'can.node'));
    const loaded = load('can') as Record<string, unknown>;
    expect(typeof loaded).toBe('object');
    expect(Object.keys(loaded).length).toBeGreaterThan(0);
  });

  test('the release points socketcan at the loader exactly where 4.0.7 requires its two addons', () => {
    const dist = readFileSync(join(REPO, 'node_modules/socketcan/dist/socketcan.js'), 'utf8');
    expect(dist.match(/require\("\.\.\/build\/Release\/can(_signals)?\.node"\)/g)).toEqual([
      'require("../build/Release/can.node")',
      'require("../build/Release/can_signals.node")',
    ]);
    const script = readFileSync(join(REPO, 'scripts/release/package.sh'), 'utf8');
    expect(script).toContain('require("./batterybank-native.cjs")("\\1")');
  });
});

const releaseTests = process.env.RELEASE_TESTS === '1';
const execFileAsync = promisify(execFile);

/** This checkout's sources (not its build output) copied to a fresh directory, sharing node_modules. */
function checkout(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const skip = new Set(['node_modules', '.git', 'build', 'dist', 'dist-bench', 'coverage']);
  cpSync(REPO, dir, { recursive: true, filter: (src) => !skip.has(relative(REPO, src).split('/')[0] ?? '') });
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

async function run(cwd: string, command: string, args: string[], timeout: number) {
  try {
    const r = await execFileAsync(command, args, {
      cwd,
      timeout,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, SOURCE_DATE_EPOCH: '1790000000' },
    });
    return { status: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { status: err.code ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

// Registered only with RELEASE_TESTS=1 (`npm run test:release`): minutes of cross builds and emulation that the
// default suite leaves out instead of reporting them as skipped.
if (releaseTests)
  describe('the GX tarball (RELEASE_TESTS=1)', () => {
    const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
    const tarball = (dir: string) => join(dir, `build/release/dbus-batterybank-${version}.tar.gz`);
    const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
    const a = join(work, 'checkout-a');
    const b = join(work, 'checkout-b');

    test('npm run package builds a small tarball with dist, pruned node_modules, socketcan for three CPUs and the GUI', async () => {
      // Both copies now, so the second build sees the same sources even while the checkout is being edited.
      checkout(a);
      checkout(b);
      const r = await run(a, 'bash', ['scripts/release/package.sh'], 600_000);
      expect(r.status, r.out).toBe(0);
      expect(statSync(tarball(a)).size).toBeLessThan(5_000_000);
      const list = (await execFileAsync('tar', ['-tzf', tarball(a)], { maxBuffer: 16 * 1024 * 1024 })).stdout.split(
        '\n',
      );
      for (const f of [
        'dbus-batterybank/dist/cli.js',
        'dbus-batterybank/service/run',
        'dbus-batterybank/service/log/run',
        'dbus-batterybank/install/installservice.sh',
        'dbus-batterybank/qml/gui-v2/dbus-batterybank.json',
        'dbus-batterybank/qml/gui-v1/PageBatterybankCells.qml',
        'dbus-batterybank/config.default.ini',
        'dbus-batterybank/README.md',
        'dbus-batterybank/LICENSE',
        'dbus-batterybank/node_modules/socketcan/prebuilds/linux-arm/can.node',
        'dbus-batterybank/node_modules/socketcan/prebuilds/linux-arm64/can.node',
        'dbus-batterybank/node_modules/socketcan/prebuilds/linux-x64/can_signals.node',
        'dbus-batterybank/node_modules/@serialport/bindings-cpp/prebuilds/linux-arm/@serialport+bindings-cpp.armv7.glibc.node',
      ]) {
        expect(list, f).toContain(f);
      }
      expect(list.filter((f) => /prebuilds\/(darwin|win32|android)|musl|armv6|node-gyp\//.test(f))).toEqual([]);
    }, 600_000);

    test('the same sources in another directory give the same tarball, byte for byte', async () => {
      const r = await run(b, 'bash', ['scripts/release/package.sh'], 600_000);
      expect(r.status, r.out).toBe(0);
      expect(sha(tarball(b))).toBe(sha(tarball(a)));
    }, 600_000);

    test('the unpacked tarball runs --version, decode jbd and loads serialport and socketcan under qemu-arm and qemu-aarch64', async () => {
      const r = await run(REPO, 'bash', ['scripts/release/gx-check.sh', tarball(a)], 900_000);
      expect(r.status, r.out).toBe(0);
      for (const target of ['armv7-cortex-a8', 'armv7-cortex-a7', 'arm64-cortex-a53', 'x64']) {
        expect(r.out).toContain(`${target}:`);
      }
      expect(r.out).not.toContain('FAIL');
      expect(r.out.match(/ok {3}batterybank demo \(driver, serial, D-Bus\)/g)).toHaveLength(4);
      expect(r.out).toContain('"socketcan": "loaded prebuilds/linux-arm/can.node"');
      expect(r.out).toContain('"serialport": "prebuilds/linux-arm/@serialport+bindings-cpp.armv7.glibc.node"');
    }, 900_000);
  });
