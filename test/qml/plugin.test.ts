/**
 * The QML is valid Qt 6 syntax (and the GUI v1 pages also as QtQuick 1.1 / ES5), and the gui-v2 plugin JSON is
 * built reproducibly from it with Qt's rcc: device-list pages bound to our ProductId.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { DEFAULT_PRODUCT_ID } from '../../src/dbus/battery-paths.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'qml-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function qmlCheck(env: Record<string, string> = {}) {
  return spawnSync('bash', ['scripts/release/qml-check.sh'], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
}

function buildPlugin(out: string) {
  const r = spawnSync(process.execPath, ['scripts/release/build-gui-plugin.mjs', out], { cwd: REPO, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(out);
}

/** Names stored in a binary Qt resource (UTF-16BE, each after a 2-byte length and a 4-byte hash). */
function resourceHas(resource: Buffer, name: string): boolean {
  const utf16be = Buffer.from(name, 'utf16le').swap16();
  return resource.includes(utf16be);
}

describe('QML syntax', () => {
  test('every QML and JS file parses with qmlformat, qmllint (syntax only) and node', () => {
    const r = qmlCheck();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/qml-check: \d+ files parse/);
  });

  test('a syntax error in a page, or ES6 in a GUI v1 page, fails the check and names the file', () => {
    const tree = join(work, 'broken-qml');
    cpSync(join(REPO, 'qml'), tree, { recursive: true });
    const page = join(tree, 'gui-v2/BatterybankCells.qml');
    writeFileSync(page, readFileSync(page, 'utf8').replace('title: "Cells"', 'title: ("Cells"'));
    const v1 = join(tree, 'gui-v1/PageBatterybankCells.qml');
    writeFileSync(v1, readFileSync(v1, 'utf8').replace('var sum = 0', 'let sum = 0'));
    const r = qmlCheck({ QML_DIR: tree });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('gui-v2/BatterybankCells.qml');
    expect(r.stderr).toContain('gui-v1/PageBatterybankCells.qml: not QtQuick 1.1 / ES5');
  });
});

describe('the gui-v2 plugin', () => {
  test('is built reproducibly: two builds give the same bytes', () => {
    const a = buildPlugin(join(work, 'a/dbus-batterybank.json'));
    const b = buildPlugin(join(work, 'b/dbus-batterybank.json'));
    expect(a.equals(b)).toBe(true);
  });

  test('declares one device-list page per view, bound to our ProductId, each inside its zlib rcc resource', () => {
    const plugin = JSON.parse(buildPlugin(join(work, 'c/dbus-batterybank.json')).toString('utf8'));
    const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
    expect(plugin).toMatchObject({ name: 'dbus-batterybank', version, minRequiredVersion: 'v1.2.33' });
    expect(plugin.integrations.map((i: { title: string }) => i.title)).toEqual([
      'Cells',
      'Charge control',
      'Battery bank',
    ]);
    const resource = Buffer.from(plugin.resource, 'base64');
    expect(resource.subarray(0, 4).toString('latin1')).toBe('qres');
    for (const i of plugin.integrations) {
      expect(i.type).toBe(2);
      expect(Number.parseInt(i.productId, 16)).toBe(DEFAULT_PRODUCT_ID);
      expect(i.url).toMatch(/^qrc:\/dbus-batterybank\/Batterybank\w+\.qml$/);
      expect(resourceHas(resource, i.url.split('/').at(-1)), i.url).toBe(true);
    }
    expect(resourceHas(resource, 'batterybank-paths.js')).toBe(true);
  });

  test('packs every gui-v2 page there is, and each is a DeviceListPluginPage', () => {
    const spec = JSON.parse(readFileSync(join(REPO, 'qml/gui-v2/plugin.json'), 'utf8'));
    const files = readdirSync(join(REPO, 'qml/gui-v2')).filter((f) => f.endsWith('.qml'));
    expect(spec.pages.map((p: { qml: string }) => p.qml).sort()).toEqual(files.sort());
    for (const f of files)
      expect(readFileSync(join(REPO, 'qml/gui-v2', f), 'utf8')).toMatch(/^DeviceListPluginPage \{/m);
  });
});
