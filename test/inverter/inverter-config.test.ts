/** The [inverter] section and [general] dbus: defaults, sources, and the errors that name file, key and value. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.js';

const defaults = {
  file: 'config.default.ini',
  text: readFileSync(fileURLToPath(new URL('../../config.default.ini', import.meta.url)), 'utf8'),
};
const user = (text: string) => parseConfig([defaults, { file: 'config.ini', text }]);
const house = '[battery.house]\nprotocol = jbd\nport = /dev/ttyUSB0\n';
const two = `${house}[battery.b]\nprotocol = jbd\nport = /dev/ttyUSB1\n`;
const bank = `${two}[bank]\nname = home\nbatteries = house, b\ntopology = 2p\n`;

function error(text: string): string {
  try {
    user(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('no ConfigError');
}

describe('[inverter]', () => {
  test('absent: no inverter, D-Bus on', () => {
    const c = user(house);
    expect(c.inverter).toBeUndefined();
    expect(c.general.dbus).toBeUndefined();
  });

  test('a Pylon inverter on can1 presents the only battery with every default', () => {
    expect(user(`${house}[inverter]\nprotocol = pylon\ncan = can1\n`).inverter).toEqual({
      protocol: 'pylon',
      endpoint: { kind: 'socketcan', iface: 'can1' },
      source: { kind: 'battery', id: 'house' },
      manufacturer: 'PYLON',
      victronExtensions: false,
      maxChargeCurrent: undefined,
      maxDischargeCurrent: undefined,
      capacityKwh: undefined,
      watchdogMs: 60_000,
    });
  });

  test('with a bank the bank is the default source; a battery can be chosen', () => {
    expect(user(`${bank}[inverter]\nprotocol = pylon\ncan = can1\n`).inverter?.source).toEqual({
      kind: 'bank',
      id: 'home',
    });
    expect(user(`${bank}[inverter]\nprotocol = pylon\ncan = can1\nsource = b\n`).inverter?.source).toEqual({
      kind: 'battery',
      id: 'b',
    });
  });

  test('BYD HVS over a USB-CAN-A adapter, with its own capacity and a short watchdog', () => {
    const inv = user(
      `${house}[inverter]\nprotocol = byd-hvs\ncan_port = /dev/ttyUSB3\nbitrate = 250000\ncapacity_kwh = 10.2\nwatchdog = 2.5\n`,
    ).inverter;
    expect(inv).toMatchObject({
      protocol: 'byd-hvs',
      endpoint: { kind: 'usbcan-a', path: '/dev/ttyUSB3', bitrate: 250_000 },
      capacityKwh: 10.2,
      watchdogMs: 2500,
    });
  });

  test('Pylon options: a manufacturer name and the Victron extensions', () => {
    expect(
      user(`${house}[inverter]\nprotocol = pylon\ncan = can1\nmanufacturer = DY\nvictron_extensions = true\n`).inverter,
    ).toMatchObject({ manufacturer: 'DY', victronExtensions: true });
  });

  test('caps below the policy are kept; enabled = false switches the output off', () => {
    expect(
      user(`${house}[inverter]\nprotocol = pylon\ncan = can1\nmax_charge_current = 30\nmax_discharge_current = 40\n`)
        .inverter,
    ).toMatchObject({ maxChargeCurrent: 30, maxDischargeCurrent: 40 });
    expect(user(`${house}[inverter]\nenabled = false\nprotocol = pylon\ncan = can1\n`).inverter).toBeUndefined();
  });

  test('a bank allows caps up to the sum of its strings (2p of 50 A each: 100 A)', () => {
    expect(user(`${bank}[inverter]\nprotocol = pylon\ncan = can1\nmax_charge_current = 100\n`).inverter).toMatchObject({
      maxChargeCurrent: 100,
    });
  });

  test.each([
    {
      case: 'an unknown protocol',
      text: `${house}[inverter]\nprotocol = sma\ncan = can1\n`,
      msg: 'config.ini: [inverter] protocol = "sma": expected one of pylon, byd-hvs',
    },
    {
      case: 'no protocol',
      text: `${house}[inverter]\ncan = can1\n`,
      msg: '[inverter] protocol = (missing): expected one of pylon, byd-hvs',
    },
    {
      case: 'no CAN interface',
      text: `${house}[inverter]\nprotocol = pylon\n`,
      msg: '[inverter] can = (missing): expected exactly one of can = can1 (SocketCAN) or can_port',
    },
    {
      case: 'both can and can_port',
      text: `${house}[inverter]\nprotocol = pylon\ncan = can1\ncan_port = /dev/ttyUSB1\n`,
      msg: '[inverter] can_port = "/dev/ttyUSB1": expected exactly one of',
    },
    {
      case: 'the interface of a CAN battery',
      text: '[battery.rack]\nprotocol = pylon-can\ncan = can0\n[inverter]\nprotocol = pylon\ncan = can0\n',
      msg: `[inverter] can = "can0": expected another CAN interface than [battery.rack]'s`,
    },
    {
      case: 'an unknown source',
      text: `${house}[inverter]\nprotocol = pylon\ncan = can1\nsource = garage\n`,
      msg: '[inverter] source = "garage": expected the bank name or a battery id (house)',
    },
    {
      case: 'two batteries, no bank, no source',
      text: `${two}[inverter]\nprotocol = pylon\ncan = can1\n`,
      msg: 'with several batteries and no [bank] it is ambiguous',
    },
    {
      case: 'a manufacturer of 9 characters',
      text: `${house}[inverter]\nprotocol = pylon\ncan = can1\nmanufacturer = PYLONTECH\n`,
      msg: '[inverter] manufacturer = "PYLONTECH": expected at most 8 ASCII characters',
    },
    {
      case: 'a Pylon option on BYD',
      text: `${house}[inverter]\nprotocol = byd-hvs\ncan = can1\nvictron_extensions = true\n`,
      msg: '[inverter] victron_extensions = "true": expected nothing: a Pylon option',
    },
    {
      case: 'a BYD option on Pylon',
      text: `${house}[inverter]\nprotocol = pylon\ncan = can1\ncapacity_kwh = 10\n`,
      msg: '[inverter] capacity_kwh = "10": expected nothing: a BYD HVS option',
    },
    {
      case: 'a charge cap above the policy maximum (names both keys)',
      text: `${house}max_charge_current = 80\n[inverter]\nprotocol = pylon\ncan = can1\nmax_charge_current = 81\n`,
      msg:
        'config.ini: [inverter] max_charge_current = "81": expected at most the charge policy\'s max_charge_current ' +
        "(80 A for [battery.house]): [inverter] max_charge_current can only lower the policy's limits",
    },
    {
      case: 'a discharge cap above a bank of two strings',
      text: `${bank}[inverter]\nprotocol = pylon\ncan = can1\nmax_discharge_current = 121\n`,
      msg: 'max_discharge_current (120 A for the bank home)',
    },
    {
      case: 'a watchdog of 0 s',
      text: `${house}[inverter]\nprotocol = pylon\ncan = can1\nwatchdog = 0\n`,
      msg: '[inverter] watchdog = "0": expected seconds without inverter frames (1–3600)',
    },
    {
      case: 'an unknown key',
      text: `${house}[inverter]\nprotocol = pylon\ncan = can1\ninterface = can1\n`,
      msg: '[inverter] unknown key "interface"',
    },
    {
      case: 'enabled not a boolean',
      text: `${house}[inverter]\nenabled = maybe\nprotocol = pylon\ncan = can1\n`,
      msg: '[inverter] enabled = "maybe": expected true or false',
    },
  ])('refused: $case', ({ text, msg }) => {
    expect(error(text)).toContain(msg);
  });
});

describe('config.default.ini', () => {
  test('its commented [inverter] example is valid once uncommented', () => {
    const lines = defaults.text.split('\n');
    const from = lines.indexOf('; [inverter]');
    expect(from).toBeGreaterThan(0);
    const example = [];
    for (const line of lines.slice(from)) {
      if (!line.startsWith(';')) break;
      if (!line.startsWith('; ;')) example.push(line.slice(2));
    }
    const twoInBank = `${two}[bank]\nname = bank\nbatteries = house, b\ntopology = 2p\n`;
    expect(user(`${twoInBank}${example.join('\n')}\n`).inverter).toMatchObject({
      protocol: 'pylon',
      endpoint: { kind: 'socketcan', iface: 'can1' },
      source: { kind: 'bank', id: 'bank' },
      maxChargeCurrent: 80,
      maxDischargeCurrent: 100,
      watchdogMs: 60_000,
    });
  });
});

describe('[general] dbus', () => {
  test('dbus = false is kept; true is the default and stays implicit', () => {
    expect(user(`[general]\ndbus = false\n${house}`).general.dbus).toBe(false);
    expect(user(`[general]\ndbus = true\n${house}`).general.dbus).toBeUndefined();
  });

  test('anything else is refused with the file, key and value', () => {
    expect(error(`[general]\ndbus = off\n${house}`)).toBe('config.ini: [general] dbus = "off": expected true or false');
  });

  test('dbus_properties_changed: off by default (ItemsChanged only), true kept, anything else refused', () => {
    expect(user(house).general.dbusPropertiesChanged).toBeUndefined();
    expect(user(`[general]\ndbus_properties_changed = false\n${house}`).general.dbusPropertiesChanged).toBeUndefined();
    expect(user(`[general]\ndbus_properties_changed = true\n${house}`).general.dbusPropertiesChanged).toBe(true);
    expect(error(`[general]\ndbus_properties_changed = 2\n${house}`)).toBe(
      'config.ini: [general] dbus_properties_changed = "2": expected true or false',
    );
  });
});
