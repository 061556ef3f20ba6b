/**
 * Config of network batteries (protocol = bluenova): `host` instead of `port`, `current_sign`, and errors that
 * name file, section, key and value.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.js';

const defaultsFile = fileURLToPath(new URL('../../config.default.ini', import.meta.url));
const defaults = { file: 'config.default.ini', text: readFileSync(defaultsFile, 'utf8') };
const user = (text: string) => parseConfig([defaults, { file: 'config.ini', text }]);
const fails = (text: string) => {
  try {
    user(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('protocol = bluenova', () => {
  test('host alone is enough: ws://host:9000/ws/, no port, no baud rate, BlueNova product name', () => {
    const c = user('[battery.nova]\nprotocol = bluenova\nhost = 10.0.0.2\n');
    const b = c.batteries[0];
    expect(b).toMatchObject({
      id: 'nova',
      protocol: 'bluenova',
      port: 'ws://10.0.0.2:9000/ws/',
      net: { host: '10.0.0.2', port: 9000, path: '/ws/', url: 'ws://10.0.0.2:9000/ws/' },
      baudRate: undefined,
      address: undefined,
      options: {},
      productName: 'BlueNova battery',
    });
  });

  test('host with a port, and current_sign = -1', () => {
    const b = user('[battery.nova]\nprotocol = bluenova\nhost = 192.168.1.40:9001\ncurrent_sign = -1\n').batteries[0];
    expect(b?.net?.url).toBe('ws://192.168.1.40:9001/ws/');
    expect(b?.options).toEqual({ current_sign: -1 });
  });

  test('several instances to several batteries, as a parallel bank', () => {
    const c = user(
      '[bank]\nbatteries = a, b, c\ntopology = 3p\n' +
        '[battery.a]\nprotocol = bluenova\nhost = 10.0.0.2\n' +
        '[battery.b]\nprotocol = bluenova\nhost = 10.0.0.3\n' +
        '[battery.c]\nprotocol = bluenova\nhost = 10.0.0.4\n',
    );
    expect(c.batteries.map((b) => b.net?.host)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect(c.bank?.topology.members).toEqual(['a', 'b', 'c']);
  });

  test.each([
    [
      'port instead of host',
      '[battery.nova]\nprotocol = bluenova\nport = /dev/ttyUSB0\n',
      'config.ini: [battery.nova] port = "/dev/ttyUSB0": expected nothing: a bluenova battery is reached by host = address[:9000]',
    ],
    [
      'no host',
      '[battery.nova]\nprotocol = bluenova\n',
      "config.ini: [battery.nova] host = (missing): expected the battery's address, e.g. 10.0.0.2 or 10.0.0.2:9000 (ws://…/ws/ is added)",
    ],
    [
      'a host that is not one',
      '[battery.nova]\nprotocol = bluenova\nhost = http://10.0.0.2/\n',
      'config.ini: [battery.nova] host = "http://10.0.0.2/": expected the battery\'s address',
    ],
    [
      'host on a serial battery',
      '[battery.house]\nprotocol = jbd\nport = /dev/ttyUSB0\nhost = 10.0.0.2\n',
      'config.ini: [battery.house] host = "10.0.0.2": expected nothing: host is for network batteries (protocol bluenova)',
    ],
    [
      'a current_sign of 2',
      '[battery.nova]\nprotocol = bluenova\nhost = 10.0.0.2\ncurrent_sign = 2\n',
      'config.ini: [battery.nova] current_sign = "2": expected one of 1, -1',
    ],
    [
      'current_sign on a serial battery',
      '[battery.house]\nprotocol = jbd\nport = /dev/ttyUSB0\ncurrent_sign = -1\n',
      'config.ini: [battery.house] current_sign = "-1": expected nothing: current_sign belongs to another protocol',
    ],
    [
      'an address',
      '[battery.nova]\nprotocol = bluenova\nhost = 10.0.0.2\naddress = 1\n',
      'config.ini: [battery.nova] address = "1": expected nothing: a bluenova battery is told apart by its host',
    ],
    [
      'two sections for one battery',
      '[battery.a]\nprotocol = bluenova\nhost = 10.0.0.2\n[battery.b]\nprotocol = bluenova\nhost = 10.0.0.2:9000\n',
      'config.ini: [battery.a], [battery.b] share port ws://10.0.0.2:9000/ws/',
    ],
  ])('%s is refused, naming file, section, key and value', (_name, text, message) => {
    expect(fails(text)).toContain(message);
  });

  test('an unknown protocol lists bluenova among the known ones', () => {
    expect(fails('[battery.x]\nprotocol = bluenovaa\nhost = 1.2.3.4\n')).toMatch(/expected one of .*bluenova/);
  });

  test('the Daly host_address choices are still shown in hex', () => {
    expect(fails('[battery.d]\nprotocol = daly\nport = /dev/ttyUSB0\nhost_address = 0x41\n')).toContain(
      'expected one of 0x40, 0x80',
    );
  });
});
