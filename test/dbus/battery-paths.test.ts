import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  type BatteryInfo,
  batteryPathTable,
  DEFAULT_PRODUCT_ID,
  TIME_TO_GO_MAX_S,
  timeToGoSeconds,
  toDbusValues,
} from '../../src/dbus/battery-paths.js';
import { ALARM_NAMES, noAlarms } from '../../src/domain/battery-state.js';
import { batteryState, limits, snapshot } from './battery-state-fixture.js';

const INFO: BatteryInfo = {
  processName: 'dbus-batterybank',
  processVersion: '0.1.0',
  productId: DEFAULT_PRODUCT_ID,
  deviceInstance: 5,
  customName: 'House',
  cellCount: 4,
};

const MEASUREMENTS = [
  '/Dc/0/Voltage',
  '/Dc/0/Current',
  '/Dc/0/Power',
  '/Dc/0/Temperature',
  '/Soc',
  '/Soh',
  '/Capacity',
  '/InstalledCapacity',
  '/ConsumedAmphours',
  '/TimeToGo',
  '/System/MinCellVoltage',
  '/System/MaxCellVoltage',
  '/System/MinVoltageCellId',
  '/System/MaxVoltageCellId',
  '/System/MinCellTemperature',
  '/System/MaxCellTemperature',
  '/System/MOSTemperature',
  '/Voltages/Cell1',
  '/Voltages/Cell4',
  '/Voltages/Sum',
  '/Voltages/Diff',
  '/Balances/Cell4',
  '/Balancing',
];

describe('batteryPathTable', () => {
  test('contains the mandatory Victron paths with their types', () => {
    const t = batteryPathTable(4);
    expect(t['/Mgmt/ProcessName']?.type).toBe('s');
    expect(t['/Mgmt/ProcessVersion']?.type).toBe('s');
    expect(t['/Mgmt/Connection']?.type).toBe('s');
    expect(t['/DeviceInstance']?.type).toBe('i');
    expect(t['/ProductId']?.type).toBe('i');
    expect(t['/ProductName']?.type).toBe('s');
    expect(t['/FirmwareVersion']?.type).toBe('s');
    expect(t['/HardwareVersion']?.type).toBe('s');
    expect(t['/Connected']?.type).toBe('i');
    expect(t['/CustomName']).toMatchObject({ type: 's', writable: true });
    expect(t['/Serial']?.type).toBe('s');
  });

  test.each([
    {
      case: 'measurements are doubles',
      paths: ['/Dc/0/Voltage', '/Soc', '/TimeToGo', '/Info/MaxChargeCurrent'],
      type: 'd',
    },
    {
      case: 'flags, counts and alarms are int32',
      paths: [
        '/Io/AllowToCharge',
        '/System/NrOfCellsPerBattery',
        '/Alarms/BmsCable',
        '/Balances/Cell1',
        '/History/ChargeCycles',
      ],
      type: 'i',
    },
    {
      case: 'cell ids and limitation texts are strings',
      paths: ['/System/MinVoltageCellId', '/Info/ChargeLimitation', '/Info/ChargeMode'],
      type: 's',
    },
  ])('$case', ({ paths, type }) => {
    const t = batteryPathTable(4);
    for (const p of paths) expect(t[p]?.type, p).toBe(type);
  });

  test('sizes the cell paths from the cell count and lists every alarm', () => {
    const t = batteryPathTable(16);
    expect(t['/Voltages/Cell16']).toBeDefined();
    expect(t['/Voltages/Cell17']).toBeUndefined();
    expect(t['/Balances/Cell16']).toBeDefined();
    for (const name of ALARM_NAMES) expect(t[`/Alarms/${name}`]?.type).toBe('i');
    expect(Object.values(t).filter((s) => s.writable)).toHaveLength(1);
  });

  test.each([{ cells: -1 }, { cells: 2.5 }, { cells: 1000 }])('rejects a cell count of $cells', ({ cells }) => {
    expect(() => batteryPathTable(cells)).toThrow(RangeError);
  });

  test('formats texts with units', () => {
    const t = batteryPathTable(4);
    expect(t['/Dc/0/Voltage']?.text?.(13.3)).toBe('13.30V');
    expect(t['/Voltages/Cell1']?.text?.(3.3251)).toBe('3.325V');
    expect(t['/TimeToGo']?.text?.(31500)).toBe('8h 45m');
  });
});

describe('toDbusValues', () => {
  test('gives a value (or invalid) for exactly the paths of the table', () => {
    const values = toDbusValues(batteryState(), INFO);
    expect(Object.keys(values).sort()).toEqual(Object.keys(batteryPathTable(4)).sort());
  });

  test('publishes an online battery', () => {
    const v = toDbusValues(batteryState(), INFO);
    expect(v).toMatchObject({
      '/Mgmt/ProcessName': 'dbus-batterybank',
      '/Mgmt/ProcessVersion': '0.1.0',
      '/Mgmt/Connection': 'Serial ttyUSB0',
      '/DeviceInstance': 5,
      '/ProductId': 0xba6b,
      '/ProductName': 'JBD BMS',
      '/FirmwareVersion': '1.2',
      '/HardwareVersion': 'HW-A',
      '/Serial': 'SN123',
      '/Connected': 1,
      '/CustomName': 'House',
      '/Dc/0/Voltage': 13.3,
      '/Dc/0/Current': -10,
      '/Dc/0/Power': -133,
      '/Dc/0/Temperature': 22,
      '/Soc': 87.5,
      '/Soh': 98,
      '/Capacity': 87.5,
      '/InstalledCapacity': 100,
      '/ConsumedAmphours': -12.5,
      '/TimeToGo': 31500,
      '/Info/MaxChargeVoltage': 14.2,
      '/Info/MaxChargeCurrent': 50,
      '/Info/MaxDischargeCurrent': 100,
      '/Info/BatteryLowVoltage': 12,
      '/Info/ChargeLimitation': 'config',
      '/Info/DischargeLimitation': 'config',
      '/Io/AllowToCharge': 1,
      '/Io/AllowToDischarge': 1,
      '/System/NrOfCellsPerBattery': 4,
      '/System/MinCellVoltage': 3.31,
      '/System/MaxCellVoltage': 3.335,
      '/System/MinCellTemperature': 21,
      '/System/MaxCellTemperature': 23,
      '/System/MinTemperatureCellId': 'T1',
      '/System/MaxTemperatureCellId': 'T2',
      '/System/NrOfModulesOnline': 1,
      '/System/NrOfModulesOffline': 0,
      '/System/NrOfModulesBlockingCharge': 0,
      '/System/NrOfModulesBlockingDischarge': 0,
      '/System/MOSTemperature': 30,
      '/Voltages/Cell1': 3.325,
      '/Voltages/Cell3': 3.31,
      '/Balances/Cell3': 0,
      '/Balances/Cell4': 1,
      '/Balancing': 1,
      '/Alarms/LowVoltage': 0,
      '/History/ChargeCycles': 42,
      '/Settings/HasTemperature': 1,
    });
    expect(v['/Voltages/Sum']).toBeCloseTo(13.3, 9);
    expect(v['/Voltages/Diff']).toBeCloseTo(0.025, 9);
    expect(v['/Info/ChargeMode']).toBeUndefined();
    expect(v['/Io/AllowToBalance']).toBeUndefined();
  });

  test.each([
    {
      case: 'offline: disconnected, measurements invalid, limits and alarms from the state',
      health: 'offline' as const,
      connected: 0,
      measurementsShown: false,
    },
    {
      case: 'stale: still connected and showing the last values',
      health: 'stale' as const,
      connected: 1,
      measurementsShown: true,
    },
    { case: 'online: connected and showing values', health: 'online' as const, connected: 1, measurementsShown: true },
  ])('$case', ({ health, connected, measurementsShown }) => {
    const alarms = { ...noAlarms(), BmsCable: health === 'offline' ? (2 as const) : (0 as const) };
    const policyLimits = limits(
      health === 'online' ? {} : { chargeCurrent: 0, dischargeCurrent: 0, chargeReason: 'BMS offline' },
    );
    const v = toDbusValues(batteryState({ health, alarms, limits: policyLimits }), INFO);
    expect(v['/Connected']).toBe(connected);
    for (const p of MEASUREMENTS) {
      if (measurementsShown) expect(v[p], p).toBeDefined();
      else expect(v[p], p).toBeUndefined();
    }
    expect(v['/Info/MaxChargeCurrent']).toBe(policyLimits.chargeCurrent);
    expect(v['/Info/MaxDischargeCurrent']).toBe(policyLimits.dischargeCurrent);
    expect(v['/Alarms/BmsCable']).toBe(alarms.BmsCable);
    // identity stays visible so the GUI can still name the battery
    expect(v['/ProductName']).toBe('JBD BMS');
    expect(v['/Mgmt/Connection']).toBe('Serial ttyUSB0');
    expect(v['/Serial']).toBe('SN123');
    if (health === 'offline') {
      expect(v['/Io/AllowToCharge']).toBe(0);
      expect(v['/Io/AllowToDischarge']).toBe(0);
      expect(v['/System/NrOfModulesOnline']).toBe(0);
      expect(v['/System/NrOfModulesOffline']).toBe(1);
      expect(v['/Info/ChargeLimitation']).toBe('BMS offline');
    }
  });

  test('publishes measurements invalid when no snapshot arrived yet', () => {
    const v = toDbusValues(batteryState({ snapshot: undefined }), INFO);
    for (const p of MEASUREMENTS) expect(v[p], p).toBeUndefined();
    expect(v['/Connected']).toBe(1);
    expect(v['/FirmwareVersion']).toBeUndefined();
    expect(v['/Settings/HasTemperature']).toBeUndefined();
  });

  test('info overrides the identity the BMS reports', () => {
    const v = toDbusValues(batteryState(), { ...INFO, firmwareVersion: '9', hardwareVersion: 'X', serial: 'S' });
    expect([v['/FirmwareVersion'], v['/HardwareVersion'], v['/Serial']]).toEqual(['9', 'X', 'S']);
  });

  test('a negative (discharging) current stays negative in current, power and consumed Ah', () => {
    const v = toDbusValues(
      batteryState({ snapshot: snapshot({ current: -25, power: undefined, voltage: 13, capacityRemaining: 40 }) }),
      INFO,
    );
    expect(v['/Dc/0/Current']).toBe(-25);
    expect(v['/Dc/0/Power']).toBe(-325); // derived V × I when the BMS gives no power
    expect(v['/ConsumedAmphours']).toBe(-60);
    expect(v['/TimeToGo']).toBe(5760);
  });

  test.each([
    { case: 'discharging: remaining / |I| in seconds', current: -10, remaining: 50, expected: 18_000 },
    { case: 'charging: the ceiling', current: 5, remaining: 50, expected: TIME_TO_GO_MAX_S },
    { case: 'idle at 0 A: the ceiling', current: 0, remaining: 50, expected: TIME_TO_GO_MAX_S },
    { case: 'a tiny discharge: capped at the ceiling', current: -0.01, remaining: 50, expected: TIME_TO_GO_MAX_S },
    { case: 'rounded to whole minutes (1 Ah at 3 A = 20 min)', current: -3, remaining: 1, expected: 1200 },
    {
      case: 'rounded to whole minutes (50 Ah at 7 A = 7 h 8 m 34 s → 7 h 9 m)',
      current: -7,
      remaining: 50,
      expected: 25_740,
    },
    { case: 'current unknown: invalid', current: undefined, remaining: 50, expected: undefined },
    { case: 'remaining unknown while discharging: invalid', current: -10, remaining: undefined, expected: undefined },
    { case: 'current NaN: invalid', current: Number.NaN, remaining: 50, expected: undefined },
  ])('TimeToGo, $case', ({ current, remaining, expected }) => {
    expect(timeToGoSeconds(current, remaining)).toBe(expected);
  });

  test('TimeToGo and Capacity fall back to SoC × installed capacity when remaining Ah is not reported', () => {
    const v = toDbusValues(
      batteryState({
        snapshot: snapshot({ capacityRemaining: undefined, soc: 50, capacityInstalled: 200, current: -20 }),
      }),
      INFO,
    );
    expect(v['/Capacity']).toBe(100);
    expect(v['/ConsumedAmphours']).toBe(-100);
    expect(v['/TimeToGo']).toBe(18_000);
  });

  test('ConsumedAmphours is never positive, even when the BMS reports more than installed', () => {
    const v = toDbusValues(
      batteryState({ snapshot: snapshot({ capacityRemaining: 101, capacityInstalled: 100 }) }),
      INFO,
    );
    expect(v['/ConsumedAmphours']).toBe(0);
  });

  test.each([
    { case: 'lowest and highest cell', cells: [3.3, 3.31, 3.29, 3.35], min: 'C3', max: 'C4' },
    { case: 'ties go to the first cell', cells: [3.3, 3.3, 3.3, 3.3], min: 'C1', max: 'C1' },
    { case: 'a NaN reading is skipped', cells: [Number.NaN, 3.31, 3.29, 3.35], min: 'C3', max: 'C4' },
    {
      case: 'all readings NaN: invalid',
      cells: [Number.NaN, Number.NaN, Number.NaN, Number.NaN],
      min: undefined,
      max: undefined,
    },
    { case: 'no cell voltages: invalid', cells: undefined, min: undefined, max: undefined },
  ])('cell ids, $case', ({ cells, min, max }) => {
    const v = toDbusValues(batteryState({ snapshot: snapshot({ cellVoltages: cells }) }), INFO);
    expect(v['/System/MinVoltageCellId']).toBe(min);
    expect(v['/System/MaxVoltageCellId']).toBe(max);
  });

  test('cell paths beyond the reported cells are invalid and extra reported cells are ignored', () => {
    const fewer = toDbusValues(batteryState({ snapshot: snapshot({ cellVoltages: [3.3, 3.4] }) }), INFO);
    expect(fewer['/Voltages/Cell2']).toBe(3.4);
    expect(fewer['/Voltages/Cell3']).toBeUndefined();
    const more = toDbusValues(batteryState({ snapshot: snapshot({ cellVoltages: [3.3, 3.3, 3.3, 3.3, 3.3] }) }), INFO);
    expect(Object.keys(more).filter((k) => k.startsWith('/Voltages/Cell'))).toHaveLength(4);
  });

  test.each([
    { case: 'FET on and CCL > 0', chargeFet: true, ccl: 50, expected: 1 },
    { case: 'FET off', chargeFet: false, ccl: 50, expected: 0 },
    { case: 'CCL 0', chargeFet: true, ccl: 0, expected: 0 },
    { case: 'FET state not reported and CCL > 0', chargeFet: undefined, ccl: 50, expected: 1 },
  ])('AllowToCharge with $case', ({ chargeFet, ccl, expected }) => {
    const v = toDbusValues(
      batteryState({ snapshot: snapshot({ chargeFet }), limits: limits({ chargeCurrent: ccl }) }),
      INFO,
    );
    expect(v['/Io/AllowToCharge']).toBe(expected);
    expect(v['/System/NrOfModulesBlockingCharge']).toBe(chargeFet === undefined ? undefined : chargeFet ? 0 : 1);
  });

  test('AllowToDischarge follows the discharge FET and DCL', () => {
    const off = toDbusValues(batteryState({ snapshot: snapshot({ dischargeFet: false }) }), INFO);
    expect(off['/Io/AllowToDischarge']).toBe(0);
    const zero = toDbusValues(batteryState({ limits: limits({ dischargeCurrent: 0 }) }), INFO);
    expect(zero['/Io/AllowToDischarge']).toBe(0);
  });

  test('bank extras: charge mode, balance permission and module counts', () => {
    const v = toDbusValues(batteryState(), {
      ...INFO,
      chargeMode: 'Float',
      allowToBalance: true,
      modules: { online: 3, offline: 1, blockingCharge: 1, blockingDischarge: 0 },
    });
    expect(v['/Info/ChargeMode']).toBe('Float');
    expect(v['/Io/AllowToBalance']).toBe(1);
    expect(v['/System/NrOfModulesOnline']).toBe(3);
    expect(v['/System/NrOfModulesOffline']).toBe(1);
    expect(v['/System/NrOfModulesBlockingCharge']).toBe(1);
  });

  test('non-finite readings become invalid, never NaN or Infinity', () => {
    const v = toDbusValues(
      batteryState({
        snapshot: snapshot({
          voltage: Number.NaN,
          current: Number.POSITIVE_INFINITY,
          power: undefined,
          soc: Number.NaN,
          temperatures: [{ name: 'T1', celsius: Number.NaN }],
          cellVoltages: [3.3, Number.NaN, 3.3, 3.3],
        }),
        limits: limits({ chargeVoltage: Number.NaN }),
      }),
      INFO,
    );
    for (const p of [
      '/Dc/0/Voltage',
      '/Dc/0/Current',
      '/Dc/0/Power',
      '/Soc',
      '/Dc/0/Temperature',
      '/Voltages/Cell2',
      '/Voltages/Sum',
    ]) {
      expect(v[p], p).toBeUndefined();
    }
    expect(v['/Info/MaxChargeVoltage']).toBeUndefined();
    expect(v['/TimeToGo']).toBeUndefined(); // an infinite current is no reading at all
  });

  test('no output number is ever NaN or infinite, whatever the readings', () => {
    const reading = fc.oneof(
      fc.double(),
      fc.constant(Number.NaN),
      fc.constant(Number.POSITIVE_INFINITY),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(
        reading,
        reading,
        reading,
        reading,
        reading,
        fc.array(fc.double(), { maxLength: 6 }),
        (voltage, current, soc, remaining, installed, cells) => {
          const v = toDbusValues(
            batteryState({
              snapshot: snapshot({
                voltage,
                current,
                soc,
                capacityRemaining: remaining,
                capacityInstalled: installed,
                cellVoltages: cells,
                power: undefined,
              }),
            }),
            INFO,
          );
          for (const value of Object.values(v)) {
            if (typeof value === 'number') expect(Number.isFinite(value)).toBe(true);
          }
        },
      ),
    );
  });
});
