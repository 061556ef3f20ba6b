/**
 * BlueNova end to end with real parts: the simulator's websocket servers on localhost → the composition root
 * (network registry, WebSocketLink, BlueNovaDriver, monitor, policy) → our services on a private dbus-daemon,
 * read back by a separate D-Bus client. One battery on its own, then three units as a parallel bank.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { type Running, startService } from '../../src/main.js';
import { BlueNovaSimulator } from '../../src/sim/bluenova-simulator.js';
import { BusClient, eventually, plain } from '../support/bus-client.js';
import { type DbusDaemon, startDbusDaemon } from '../support/dbus-daemon.js';

let daemon: DbusDaemon;
let client: BusClient;
const sims: BlueNovaSimulator[] = [];
const services: Running[] = [];

const service = (id: string) => `com.victronenergy.battery.batterybank_${id}`;

async function items(name: string): Promise<Record<string, unknown>> {
  const raw = await client.getItems(name);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v.Value)]));
}

async function value(name: string, path: string): Promise<unknown> {
  try {
    return (await items(name))[path];
  } catch {
    return undefined;
  }
}

async function simulator(opts: ConstructorParameters<typeof BlueNovaSimulator>[0]): Promise<BlueNovaSimulator> {
  const sim = new BlueNovaSimulator({ cycleMs: 100, ...opts });
  await sim.start();
  sims.push(sim);
  return sim;
}

function run(text: string, logs: string[]): Running {
  const running = startService({
    config: parseConfig([{ file: 'bluenova.ini', text }]),
    logger: createLogger({ level: 'debug', write: (l) => logs.push(l) }),
    version: 'test',
    busAddress: daemon.address,
    onFatal: (e) => {
      throw e;
    },
  });
  services.push(running);
  return running;
}

const hostOf = (url: string) => new URL(url).host;

beforeAll(async () => {
  daemon = await startDbusDaemon();
  client = await BusClient.connect(daemon.address);
});

afterAll(async () => {
  for (const r of services) await r.stop();
  for (const s of sims) await s.close();
  client?.close();
  await daemon?.stop();
});

describe('one BlueNova battery', () => {
  const logs: string[] = [];
  let sim: BlueNovaSimulator;

  beforeAll(async () => {
    sim = await simulator({
      units: [{ mcuId: 0x00bb0001, current: 12.5, soc: 64, soh: 97.5, temperature: 26, systemState: 'RUNNING' }],
    });
    run(
      `[battery.nova]\nprotocol = bluenova\nhost = ${hostOf(sim.url())}\npoll_interval = 0.5\nstale_after = 2\n`,
      logs,
    );
    // SOH is printed after SOC, so it is in the second snapshot (a snapshot goes out at its cycle's last required line).
    await eventually(async () => (await value(service('nova'), '/Soh')) === 97.5, 10_000);
  }, 20_000);

  test('the battery is on D-Bus with the console values', async () => {
    const v = await items(service('nova'));
    const cells = sim.values(0).cells;
    expect(v['/Connected']).toBe(1);
    expect(v['/ProductName']).toBe('BlueNova battery');
    expect(v['/Mgmt/Connection']).toBe(sim.url());
    expect(v['/Serial']).toBe('00BB0001');
    expect(v['/Dc/0/Voltage']).toBeCloseTo(
      cells.reduce((a, b) => a + b, 0),
      2,
    );
    expect(v['/Dc/0/Current']).toBe(12.5);
    expect(v['/Soc']).toBe(64);
    expect(v['/Soh']).toBe(97.5);
    expect(v['/System/NrOfCellsPerBattery']).toBe(16);
    expect(v['/Voltages/Cell1']).toBeCloseTo(cells[0] as number, 6);
    expect(v['/Voltages/Cell16']).toBeCloseTo(cells[15] as number, 6);
    expect(v['/System/MaxCellTemperature']).toBe(26);
    expect(v['/Io/AllowToCharge']).toBe(1);
    expect(v['/Info/MaxChargeCurrent']).toBeGreaterThan(0);
    expect(v['/BlueNova/McuId']).toBe('00BB0001');
    expect(v['/BlueNova/Units']).toBe(1);
    expect(v['/BlueNova/Rank']).toBe(1);
    expect(v['/BlueNova/SystemState']).toBe('RUNNING');
    expect(v['/BlueNova/Breaker']).toBe('CLOSED');
    expect(v['/BlueNova/Errors']).toBe(''); // the console's "None": no error
    expect(v['/Alarms/InternalFailure']).toBe(0);
    const log = logs.join('\n');
    expect(log).toMatch(/\[nova\] connected to Websocket ws:\/\/127\.0\.0\.1:\d+\/ws\//);
    expect(log).toMatch(/BlueNova MCU ID 00BB0001, 1 unit in parallel, rank 1/);
    expect(log).not.toMatch(/units in parallel, but/);
  });

  test('an error text and an open breaker: alarm, charging stopped, the text on /BlueNova/Errors', async () => {
    sim.setValues(0, { errors: 'E42 cellcomms', breaker: 'OPEN' });
    await eventually(async () => (await value(service('nova'), '/BlueNova/Errors')) === 'E42 cellcomms', 5000);
    await eventually(async () => (await value(service('nova'), '/Info/MaxChargeCurrent')) === 0, 5000);
    const v = await items(service('nova'));
    expect(v['/Alarms/InternalFailure']).toBe(2);
    expect(v['/Info/ChargeLimitation']).toBe('charge FET off');
    expect(v['/Info/MaxDischargeCurrent']).toBe(0);
    sim.setValues(0, { errors: 'None', breaker: 'CLOSED' });
    await eventually(async () => (await value(service('nova'), '/Alarms/InternalFailure')) === 0, 5000);
  }, 15_000);

  test('a silent console goes offline after stale_after and comes back by itself', async () => {
    sim.pause(true);
    await eventually(async () => (await value(service('nova'), '/Connected')) === 0, 6000);
    expect(await value(service('nova'), '/Alarms/BmsCable')).toBe(2);
    sim.pause(false);
    await eventually(async () => (await value(service('nova'), '/Connected')) === 1, 6000);
  }, 15_000);

  test('the connection cut: reconnected with the back-off, values again', async () => {
    sim.dropConnections();
    await eventually(() => logs.some((l) => l.includes('[nova] connected again to')), 5000);
    sim.setValues(0, { soc: 63 });
    await eventually(async () => (await value(service('nova'), '/Soc')) === 63, 5000);
    expect(logs.join('\n')).toMatch(/WARN {2}\[nova\] lost the console/);
  }, 15_000);
});

describe('three BlueNova units in parallel as a bank', () => {
  const logs: string[] = [];
  let sim: BlueNovaSimulator;

  beforeAll(async () => {
    sim = await simulator({
      units: [
        { current: 3, soc: 70 },
        { current: 4, soc: 72 },
        { current: 5, soc: 74 },
      ],
    });
    const sections = ['a', 'b', 'c']
      .map(
        (id, i) =>
          `[battery.${id}]\nprotocol = bluenova\nhost = ${hostOf(sim.url(i))}\npoll_interval = 0.5\nstale_after = 2\n`,
      )
      .join('');
    run(`[bank]\nname = nova_bank\nbatteries = a, b, c\ntopology = 3p\n${sections}`, logs);
    await eventually(async () => (await value(service('nova_bank'), '/System/NrOfModulesOnline')) === 3, 15_000);
  }, 25_000);

  test('the bank service: the sum of the currents, the mean voltage, three batteries in parallel', async () => {
    await eventually(async () => (await value(service('nova_bank'), '/Dc/0/Current')) === 12, 5000);
    const v = await items(service('nova_bank'));
    const cells = sim.values(0).cells;
    expect(v['/Connected']).toBe(1);
    expect(v['/Dc/0/Voltage']).toBeCloseTo(
      cells.reduce((a, b) => a + b, 0),
      2,
    );
    expect(v['/Dc/0/Current']).toBe(12);
    expect(v['/Soc']).toBeGreaterThanOrEqual(70);
    expect(v['/Soc']).toBeLessThanOrEqual(74);
    expect(v['/System/NrOfBatteries']).toBe(3);
    expect(v['/System/BatteriesParallel']).toBe(3);
    expect(v['/System/BatteriesSeries']).toBe(1);
    // No capacity on the console: with capacity sharing the bank may only take one unit's limit (50 A default).
    expect(v['/Info/MaxChargeCurrent']).toBe(50);
    expect(v['/Info/ChargeLimitation']).toMatch(/capacity unknown/);
    expect(v['/Batteries/b/Connected']).toBe(1);
  });

  test('the members are published with their rank and N_UNITS, and no hint since all three are configured', async () => {
    for (const [i, id] of ['a', 'b', 'c'].entries()) {
      const m = await items(service(id));
      expect(m['/BlueNova/Rank']).toBe(i + 1);
      expect(m['/BlueNova/Units']).toBe(3);
      expect(m['/Info/MaxChargeCurrent']).toBeUndefined(); // DVCC takes the bank
    }
    expect(logs.join('\n')).not.toMatch(/units in parallel, but/);
  });

  test('one unit unreachable: the bank stays up with two', async () => {
    await sim.stopServer(2);
    await eventually(async () => (await value(service('nova_bank'), '/System/NrOfModulesOffline')) === 1, 8000);
    const v = await items(service('nova_bank'));
    expect(v['/Connected']).toBe(1);
    expect(v['/Batteries/c/Connected']).toBe(0);
    await eventually(async () => (await value(service('nova_bank'), '/Dc/0/Current')) === 7, 5000);
    await sim.restartServer(2);
    await eventually(async () => (await value(service('nova_bank'), '/System/NrOfModulesOnline')) === 3, 10_000);
  }, 25_000);
});
