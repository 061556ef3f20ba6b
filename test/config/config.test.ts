import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ConfigError, DEFAULT_CHARGE, parseConfig } from '../../src/config.js';
import { DEFAULT_CHARGE_CONTROL_CONFIG } from '../../src/policy/charge-control-config.js';

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
        address: undefined,
        options: {},
        pollIntervalMs: 1000,
        replyTimeoutMs: 500,
        staleAfterMs: 10_000,
        deviceInstance: 100,
        customName: '',
        productName: 'JBD BMS',
        charge: DEFAULT_CHARGE,
        control: DEFAULT_CHARGE_CONTROL_CONFIG,
      },
    ]);
  });

  test('config.default.ini states exactly the built-in defaults', () => {
    const fromFile = parseConfig([defaults, { file: 'x.ini', text: minimal }]).batteries[0]?.charge;
    const builtIn = parseConfig([{ file: 'x.ini', text: minimal }]).batteries[0]?.charge;
    expect(fromFile).toEqual(builtIn);
  });

  test('a battery section overrides [charge], which overrides the defaults', () => {
    const c = user(`[charge]\nmax_charge_current = 80\nmax_cell_voltage = 3.48\n${minimal}max_charge_current = 100\n`);
    expect(c.batteries[0]?.charge.maxChargeCurrent).toBe(100);
    expect(c.batteries[0]?.charge.maxCellVoltage).toBe(3.48);
    expect(c.batteries[0]?.control.maxCellVoltage).toBe(3.48);
    expect(c.batteries[0]?.control.maxChargeCurrent).toBe(100);
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
      msg: 'config.ini: [battery.x] protocol = "foo": expected one of auto, jbd, jk-serial, jk-modbus, daly, pylontech, seplos',
    },
    {
      case: 'an address for a family without addressing',
      text: `${minimal}address = 2\n`,
      msg: '[battery.house] address = "2": expected no address: protocol jbd has one BMS per port',
    },
    {
      case: 'a JK-PB address out of range',
      text: '[battery.p]\nprotocol = jk-modbus\nport = /dev/x\naddress = 16\n',
      msg: 'address = "16": expected a bus address 1–15',
    },
    {
      case: 'two JBD on one port',
      text: `${minimal}[battery.b]\nprotocol = jbd\nport = /dev/ttyUSB0\n`,
      msg: '[battery.house], [battery.b] share port /dev/ttyUSB0, but protocol jbd has no bus address',
    },
    {
      case: 'two packs with one address',
      text: '[battery.a]\nprotocol = pylontech\nport = /dev/x\naddress = 2\n[battery.b]\nprotocol = pylontech\nport = /dev/x\n',
      msg: 'both use address 2 on /dev/x',
    },
    {
      case: 'two protocols on one port',
      text: '[battery.a]\nprotocol = pylontech\nport = /dev/x\n[battery.b]\nprotocol = seplos\nport = /dev/x\n',
      msg: 'share port /dev/x but not protocol and baud rate',
    },
    {
      case: 'a Daly option on a JBD',
      text: `${minimal}host_address = 0x80\n`,
      msg: 'host_address = "0x80": expected nothing: host_address belongs to another protocol',
    },
    {
      case: 'a Daly host address that is not 0x40 or 0x80',
      text: '[battery.d]\nprotocol = daly\nport = /dev/x\nhost_address = 0x41\n',
      msg: 'expected one of 0x40, 0x80',
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
    { case: 'unknown section', text: `${minimal}[modbus]\nhost = x\n`, msg: 'unknown section [modbus]' },
    { case: 'a typo in a telemetry section', text: `${minimal}[mqtt]\nhots = x\n`, msg: '[mqtt] unknown key "hots"' },
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
      msg: '[battery.house] max_cell_voltage (3.7) must be below cell_ovp_voltage (3.6)',
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

  test('three Pylontech packs share one port by address, each with the family defaults', () => {
    const c = user(
      '[battery.p1]\nprotocol = pylontech\nport = /dev/ttyUSB0\naddress = 2\n' +
        '[battery.p2]\nprotocol = pylontech\nport = /dev/ttyUSB0\naddress = 3\n' +
        '[battery.p3]\nprotocol = pylontech\nport = /dev/ttyUSB0\naddress = 4\n',
    );
    expect(c.batteries.map((b) => [b.id, b.address, b.baudRate, b.productName])).toEqual([
      ['p1', 2, 115200, 'Pylontech battery'],
      ['p2', 3, 115200, 'Pylontech battery'],
      ['p3', 4, 115200, 'Pylontech battery'],
    ]);
  });

  test('protocol = auto leaves the baud rate to detection', () => {
    const b = user('[battery.a]\nprotocol = auto\nport = /dev/ttyUSB0\n').batteries[0];
    expect(b?.protocol).toBe('auto');
    expect(b?.baudRate).toBeUndefined();
  });

  test('a Daly on the UART port takes host_address 0x80', () => {
    expect(user('[battery.d]\nprotocol = daly\nport = /dev/x\nhost_address = 0x80\n').batteries[0]?.options).toEqual({
      host_address: 0x80,
    });
  });

  test("dbus-serialbattery's upper-case key names are accepted as aliases", () => {
    const c = user(`${minimal}SWITCH_TO_FLOAT_WAIT_FOR_SEC = 600\nMAX_BATTERY_CHARGE_CURRENT = 70\n`);
    expect(c.batteries[0]?.control.floatAfterSec).toBe(600);
    expect(c.batteries[0]?.control.maxChargeCurrent).toBe(70);
    expect(c.batteries[0]?.charge.maxChargeCurrent).toBe(70);
  });

  test('contradictory charge control is refused naming the keys', () => {
    expect(() => user(`${minimal}float_cell_voltage = 3.6\n`)).toThrow(
      'config.ini: [battery.house] float_cell_voltage (3.6) must not be above max_cell_voltage (3.45)',
    );
  });

  test('[bank] combines batteries by topology', () => {
    const four = ['a', 'b', 'c', 'd']
      .map((id, i) => `[battery.${id}]\nprotocol = jbd\nport = /dev/ttyUSB${i}\n`)
      .join('');
    const c = user(`[bank]\nname = house\nbatteries = a, b, c, d\ntopology = 2s2p\n${four}`);
    expect(c.bank).toMatchObject({ id: 'house', sharing: 'capacity', publishMembers: true, deviceInstance: 99 });
    expect(c.bank?.topology.strings).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(() => user(`[bank]\nbatteries = a, b, c\ntopology = 2s2p\n${four}`)).toThrow(ConfigError);
    expect(() => user(`[bank]\nbatteries = a, x\n${four}`)).toThrow(/\[bank\]/);
    expect(() => user(`[bank]\nname = a\nbatteries = a, b\n${four}`)).toThrow('[bank] name = "a"');
    expect(user(four).bank).toBeUndefined();
  });

  test('Bluetooth and CAN batteries need no serial port', () => {
    const c = user(
      '[battery.b]\nprotocol = jbd\nmac = a4:c1:38:00:00:01\nble_mode = poll\n' +
        '[battery.c]\nprotocol = pylon-can\ncan = can0\n[battery.d]\nprotocol = deye-can\ncan_port = /dev/ttyUSB1\npack = 2\nbitrate = 250000\n',
    );
    expect(c.batteries[0]?.ble).toEqual({
      mac: 'A4:C1:38:00:00:01',
      adapter: { backend: 'bluez', adapter: 'hci0' },
      mode: 'poll',
    });
    expect(c.batteries[1]?.can).toEqual({
      endpoint: { kind: 'socketcan', iface: 'can0' },
      pack: undefined,
      keepAlive: true,
    });
    expect(c.batteries[2]?.can?.endpoint).toEqual({ kind: 'usbcan-a', path: '/dev/ttyUSB1', bitrate: 250_000 });
    expect(c.batteries[2]?.can?.pack).toBe(2);
    expect(() => user('[battery.x]\nprotocol = pylontech\nmac = a4:c1:38:00:00:01\n')).toThrow(
      'has no Bluetooth variant',
    );
    expect(() => user('[battery.x]\nprotocol = jbd\nmac = nope\n')).toThrow('[battery.x] mac = "nope"');
    expect(() => user('[battery.x]\nprotocol = pylon-can\n')).toThrow('exactly one of can = can0');
    expect(() => user('[battery.x]\nprotocol = jbd\nport = /dev/x\ncan = can0\n')).toThrow('is for the CAN protocols');
  });

  test('product_id accepts hex', () => {
    expect(user(`[general]\nproduct_id = 0xBA70\n${minimal}`).general.productId).toBe(0xba70);
  });
});
