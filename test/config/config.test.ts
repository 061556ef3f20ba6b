import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ConfigError, DEFAULT_CHARGE, parseConfig } from '../../src/config.js';

const defaultsFile = fileURLToPath(new URL('../../config.default.ini', import.meta.url));
const defaults = { file: 'config.default.ini', text: readFileSync(defaultsFile, 'utf8') };
const user = (text: string) => parseConfig([defaults, { file: 'config.ini', text }]);
const minimal = '[battery.house]\nprotocol = jbd\nport = /dev/ttyUSB0\n';

describe('parseConfig', () => {
  test('a minimal battery section gets every default', () => {
    const c = user(minimal);
    expect(c.general).toEqual({ logLevel: 'info', productId: 0xba6b });
    expect(c.batteries).toEqual([
      {
        id: 'house',
        protocol: 'jbd',
        port: '/dev/ttyUSB0',
        baudRate: 9600,
        pollIntervalMs: 1000,
        replyTimeoutMs: 500,
        staleAfterMs: 10_000,
        deviceInstance: 100,
        customName: '',
        productName: 'JBD BMS',
        charge: DEFAULT_CHARGE,
      },
    ]);
  });

  test('config.default.ini states exactly the built-in defaults', () => {
    const fromFile = parseConfig([defaults, { file: 'x.ini', text: minimal }]).batteries[0]?.charge;
    const builtIn = parseConfig([{ file: 'x.ini', text: minimal }]).batteries[0]?.charge;
    expect(fromFile).toEqual(builtIn);
  });

  test('a battery section overrides [charge], which overrides the defaults', () => {
    const c = user(`[charge]\nmax_charge_current = 80\nmax_cell_voltage = 3.5\n${minimal}max_charge_current = 100\n`);
    expect(c.batteries[0]?.charge.maxChargeCurrent).toBe(100);
    expect(c.batteries[0]?.charge.maxCellVoltage).toBe(3.5);
  });

  test('several batteries keep their order and get distinct preferred instances', () => {
    const c = user(
      `${minimal}[battery.b2]\nprotocol = jbd\nport = /dev/ttyUSB1\npoll_interval = 2\nstale_after = 20\n`,
    );
    expect(c.batteries.map((b) => [b.id, b.deviceInstance, b.pollIntervalMs, b.staleAfterMs])).toEqual([
      ['house', 100, 1000, 10_000],
      ['b2', 101, 2000, 20_000],
    ]);
  });

  test.each([
    {
      case: 'unknown protocol',
      text: '[battery.x]\nprotocol = foo\nport = /dev/x\n',
      msg: 'config.ini: [battery.x] protocol = "foo": expected one of jbd',
    },
    {
      case: 'missing port',
      text: '[battery.x]\nprotocol = jbd\n',
      msg: '[battery.x] port = (missing): expected a serial device path',
    },
    {
      case: 'text where a number belongs',
      text: `${minimal}max_charge_current = lots\n`,
      msg: '[battery.house] max_charge_current = "lots": expected a current in A',
    },
    { case: 'negative current', text: `${minimal}max_charge_current = -5\n`, msg: 'max_charge_current = "-5"' },
    {
      case: 'unknown key (typo)',
      text: `${minimal}max_charge_curent = 5\n`,
      msg: '[battery.house] unknown key "max_charge_curent"',
    },
    { case: 'unknown section', text: `${minimal}[mqtt]\nhost = x\n`, msg: 'unknown section [mqtt]' },
    { case: 'bad battery id', text: '[battery.House]\nprotocol = jbd\nport = /dev/x\n', msg: 'battery id "House"' },
    { case: 'no battery at all', text: '[general]\nlog_level = debug\n', msg: 'no battery configured' },
    {
      case: 'bad log level',
      text: `[general]\nlog_level = loud\n${minimal}`,
      msg: '[general] log_level = "loud": expected one of debug',
    },
    {
      case: 'max cell above OVP',
      text: `${minimal}max_cell_voltage = 3.7\n`,
      msg: 'max_cell_voltage must be below cell_ovp_voltage',
    },
    {
      case: 'reply timeout not below poll interval',
      text: `${minimal}reply_timeout = 1\n`,
      msg: 'reply_timeout = "1": expected less than poll_interval',
    },
    {
      case: 'stale_after not above poll interval',
      text: `${minimal}poll_interval = 5\nstale_after = 5\n`,
      msg: 'stale_after = "5"',
    },
    { case: 'a key outside a section', text: `port = x\n${minimal}`, msg: 'outside any section' },
  ])('$case is refused with a message naming file, section, key and value', ({ text, msg }) => {
    expect(() => user(text)).toThrow(ConfigError);
    expect(() => user(text)).toThrow(msg);
  });

  test('product_id accepts hex', () => {
    expect(user(`[general]\nproduct_id = 0xBA70\n${minimal}`).general.productId).toBe(0xba70);
  });
});
