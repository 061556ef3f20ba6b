/**
 * Every D-Bus path the GUI pages read exists: the absolute paths in the battery path table
 * (batteryPathTable), the battery-bank paths in THE bank list qml/batterybank-paths.js, which is checked against
 * the bank's own path table (bankPathTypes). Pages may not name a bank path themselves.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { bankLayout, bankPathTypes } from '../../src/bank/bank-paths.js';
import { parseTopology } from '../../src/bank/topology.js';
import { batteryPathTable } from '../../src/dbus/battery-paths.js';
import { INVERTER_PATH_TYPES } from '../../src/inverter/inverter-output.js';

const QML = fileURLToPath(new URL('../../qml', import.meta.url));
const pages = ['gui-v1', 'gui-v2'].flatMap((d) =>
  readdirSync(join(QML, d))
    .filter((f) => f.endsWith('.qml'))
    .map((f) => join(d, f)),
);
const source = (file: string) => readFileSync(join(QML, file), 'utf8');

/** String literals of a QML file, comment lines left out. */
function literals(text: string): string[] {
  const code = text
    .split('\n')
    .filter((l) => !/^\s*\/\//.test(l))
    .join('\n');
  return [...code.matchAll(/"((?:[^"\\\n]|\\.)*)"/g)].map((m) => m[1] as string);
}

/** `var NAME = "value";` entries of the bank list. */
function bankList(): Map<string, string> {
  const text = source('batterybank-paths.js');
  return new Map([...text.matchAll(/^var ([A-Z_]+) = "([^"]*)";/gm)].map((m) => [m[1] as string, m[2] as string]));
}

// The inverter output's status paths are on the presented service too (src/main.ts adds them).
const table = new Set([...Object.keys(batteryPathTable(16)), ...Object.keys(INVERTER_PATH_TYPES)]);
const topology = parseTopology({ batteries: ['a', 'b'], topology: '2p' }, ['a', 'b']);
const bankPaths = new Set(Object.keys(bankPathTypes(bankLayout(topology, { a: 16, b: 16 }))));

describe('paths the pages read', () => {
  test('there are pages for both GUIs: Cells, Charge control and Bank each', () => {
    for (const name of ['Cells', 'ChargeControl', 'Bank']) {
      expect(pages.filter((p) => p.includes(`Batterybank${name}`)).length, name).toBeGreaterThanOrEqual(2);
    }
  });

  test.each(pages)('every absolute path in %s is in the battery path table (cell paths by number)', (page) => {
    const paths = literals(source(page)).filter((s) => s.startsWith('/'));
    const unknown = paths.filter((p) => !table.has(p) && !(p.endsWith('/Cell') && table.has(`${p}1`)));
    expect(unknown, `${page} reads paths the driver does not publish; bank paths go through BankPaths`).toEqual([]);
  });

  test.each(pages)('every BankPaths name %s uses is defined in the bank list', (page) => {
    const list = bankList();
    const used = [...source(page).matchAll(/BankPaths\.([A-Za-z_]+)/g)].map((m) => m[1] as string);
    const functions = [...source('batterybank-paths.js').matchAll(/^function ([A-Za-z]+)/gm)].map((m) => m[1]);
    expect(used.filter((n) => !list.has(n) && !functions.includes(n))).toEqual([]);
  });

  test('the pages read the cells, the balancing flags and the charge-control paths the brief asks for', () => {
    const all = new Set(pages.flatMap((p) => literals(source(p))));
    for (const p of [
      '/Voltages/Cell',
      '/Balances/Cell',
      '/System/MinCellVoltage',
      '/System/MaxCellVoltage',
      '/Info/MaxChargeVoltage',
      '/Info/MaxChargeCurrent',
      '/Info/MaxDischargeCurrent',
      '/Info/ChargeMode',
      '/Info/ChargeLimitation',
      '/Info/DischargeLimitation',
      '/Inverter/Protocol',
      '/Inverter/Connected',
      '/Inverter/LastSeen',
    ]) {
      expect(all.has(p), p).toBe(true);
    }
  });

  test('no page repeats what the stock battery page already shows (SoC, DC values, capacity, history)', () => {
    const stock = ['/Soc', '/Soh', '/Dc/0/Voltage', '/Dc/0/Current', '/Dc/0/Power', '/Capacity', '/TimeToGo'];
    const shown = pages.flatMap((p) =>
      literals(source(p))
        .filter((s) => stock.includes(s))
        .map((s) => `${p}: ${s}`),
    );
    expect(shown).toEqual([]);
  });
});

describe('the bank list (qml/batterybank-paths.js)', () => {
  test('its service-level paths are bank paths the driver publishes', () => {
    const service = [...bankList().entries()].filter(([name]) => !name.startsWith('MEMBER'));
    expect(service.length).toBeGreaterThan(0);
    for (const [name, path] of service) {
      if (name === 'MEMBERS') {
        expect(
          [...bankPaths].some((p) => p.startsWith(`${path}/a/`)),
          path,
        ).toBe(true);
      } else {
        expect(bankPaths.has(path), `${name} = ${path}`).toBe(true);
      }
    }
  });

  test('each member path exists under /Batteries/<member>/ for every member', () => {
    const list = bankList();
    const members = [...list.entries()].filter(([name]) => name.startsWith('MEMBER_'));
    expect(members.length).toBeGreaterThanOrEqual(6);
    for (const [name, path] of members) {
      for (const member of ['a', 'b']) {
        expect(bankPaths.has(`${list.get('MEMBERS')}/${member}${path}`), `${name} = ${path}`).toBe(true);
      }
    }
  });

  test('covers what the Bank pages show per member: state, voltage, current, SoC and connection', () => {
    const list = bankList();
    for (const n of ['MEMBER_HEALTH', 'MEMBER_VOLTAGE', 'MEMBER_CURRENT', 'MEMBER_SOC', 'MEMBER_CONNECTED']) {
      expect(list.has(n), n).toBe(true);
      for (const page of ['gui-v1/PageBatterybankBank.qml', 'gui-v2/BatterybankBank.qml']) {
        expect(source(page), `${page} shows ${n}`).toContain(`BankPaths.${n}`);
      }
    }
  });
});
