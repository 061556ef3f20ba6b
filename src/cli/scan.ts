/**
 * `batterybank scan`: list nearby Bluetooth LE devices that look like a BMS — name, address, RSSI, the family
 * guessed from the advertised service and the name — with the config lines for each. Scans through BlueZ over
 * D-Bus (default) or noble (`backend: 'noble'`: adapter `hciN`, or a UART HCI port); or any BleLink passed in.
 */
import { BluezBleLink } from '../dbus/ble-bluez.js';
import { errorMessage } from '../domain/errors.js';
import type { BleAdvertisement, BleLink } from '../links/ble/ble-link.js';
import { NobleBleLink } from '../links/ble/noble-link.js';

/** The config `protocol` a BLE BMS gets. */
export type BleFamily = 'jbd' | 'jk-ble' | 'daly';

export interface ScanOptions {
  /** Scan time, ms (default 10 000). */
  durationMs?: number | undefined;
  /** `bluez` (default) or `noble`; `hciUart` implies noble. */
  backend?: 'bluez' | 'noble' | undefined;
  /** Adapter, `hci0` (default), `hci1` … */
  adapter?: string | undefined;
  /** HCI over a UART instead (`ble_hci_uart`). */
  hciUart?: string | undefined;
  /** Use this adapter instead of making one (tests, other backends). */
  ble?: BleLink | undefined;
  /** List every device, not only BMS-looking ones. */
  all?: boolean | undefined;
  /** Output (default console.log). */
  print?: ((line: string) => void) | undefined;
}

export interface ScanResult extends BleAdvertisement {
  family: BleFamily | undefined;
}

const BY_SERVICE: Record<string, BleFamily> = { ff00: 'jbd', ffe0: 'jk-ble', fff0: 'daly' };
const BY_NAME: readonly (readonly [RegExp, BleFamily])[] = [
  [/^(xiaoxiang|jbd|sp\d+s|overkill|dp\d+s)/i, 'jbd'],
  [/^(jk[-_]|jk-b|jkbms)/i, 'jk-ble'],
  [/^(dl-|daly)/i, 'daly'],
];

/** The family an advertisement suggests, from its service UUIDs first, then its name. */
export function guessFamily(adv: Pick<BleAdvertisement, 'name' | 'serviceUuids'>): BleFamily | undefined {
  for (const u of adv.serviceUuids) {
    const f = BY_SERVICE[u];
    if (f) return f;
  }
  for (const [re, f] of BY_NAME) if (re.test(adv.name)) return f;
  return undefined;
}

/** INI lines for one found BMS (`[battery.<id>]` section). */
export function configLines(r: ScanResult, opts: Pick<ScanOptions, 'adapter' | 'hciUart' | 'backend'> = {}): string[] {
  const id = `ble_${r.address.replace(/:/g, '').slice(-6)}`;
  const lines = [`[battery.${id}]`, `protocol = ${r.family ?? 'jbd'}`, `mac = ${r.address}`];
  if (opts.hciUart !== undefined) lines.push('ble_backend = noble', `ble_hci_uart = ${opts.hciUart}`);
  else {
    if (opts.backend === 'noble') lines.push('ble_backend = noble');
    if (opts.adapter !== undefined && opts.adapter !== 'hci0') lines.push(`adapter = ${opts.adapter}`);
  }
  if (r.name) lines.push(`custom_name = ${r.name}`);
  return lines;
}

/** Scan and print; resolves with the BMS-looking devices, strongest first. */
export async function scanCommand(opts: ScanOptions = {}): Promise<ScanResult[]> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const ble = opts.ble ?? makeLink(opts);
  const durationMs = opts.durationMs ?? 10_000;
  let found: BleAdvertisement[];
  try {
    print(`Scanning ${ble.description} for ${(durationMs / 1000).toFixed(1)} s …`);
    found = await ble.scan({ durationMs });
  } catch (e) {
    print(`scan failed: ${errorMessage(e)}`);
    throw e;
  } finally {
    if (!opts.ble) await ble.close();
  }
  const results = found
    .map((a): ScanResult => ({ ...a, family: guessFamily(a) }))
    .filter((r) => opts.all || r.family !== undefined)
    .sort((a, b) => b.rssi - a.rssi);
  if (results.length === 0) {
    print('No BMS found. Is it in range, powered and not connected to a phone app?');
    return results;
  }
  for (const r of results) {
    print(`${r.address}  ${String(r.rssi).padStart(4)} dBm  ${(r.family ?? '?').padEnd(6)}  ${r.name || '(no name)'}`);
  }
  print('');
  print('Config (add to config.ini):');
  for (const r of results.filter((x) => x.family !== undefined)) {
    print('');
    for (const l of configLines(r, opts)) print(l);
  }
  return results;
}

function makeLink(opts: ScanOptions): BleLink {
  const adapter = opts.adapter ?? 'hci0';
  if (opts.hciUart !== undefined || opts.backend === 'noble') {
    const n = Number.parseInt(adapter.replace(/^hci/, ''), 10);
    return new NobleBleLink({ deviceId: Number.isFinite(n) ? n : 0, uartPort: opts.hciUart });
  }
  return new BluezBleLink({ adapter });
}
