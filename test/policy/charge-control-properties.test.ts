/**
 * Safety properties of the charge-control policy over random input sequences.
 * PROPERTY_RUNS sets the run count (default 10 000 per property; run 10^6 by hand:
 * `PROPERTY_RUNS=1000000 npx vitest run test/policy/charge-control-properties.test.ts`).
 * PROPERTY_SEED fixes the seed to replay a failure fast-check reported.
 */
import fc from 'fast-check';
import { describe, test } from 'vitest';
import {
  type BatterySnapshot,
  PROTECTION_FLAG_NAMES,
  type ProtectionFlags,
} from '../../src/domain/battery-snapshot.js';
import type { Health } from '../../src/domain/battery-state.js';
import { bmsManaged } from '../../src/policy/charge-control/currents.js';
import {
  type ChargeState,
  chargeControl,
  freshChargeState,
  parseChargeState,
  serializeChargeState,
} from '../../src/policy/charge-control.js';
import { type ChargeControlConfig, DEFAULT_CHARGE_CONTROL_CONFIG } from '../../src/policy/charge-control-config.js';
import { config } from './policy-fixtures.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 10_000);
const SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
const PARAMS = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };
// Long runs are meant for one manual pass; give them the time they need.
const TIMEOUT = Math.max(30_000, RUNS * 5);

/** Configurations that reach every branch: modes, controllers, SoC reset, short timers, zero holds. */
const CONFIGS: readonly ChargeControlConfig[] = [
  DEFAULT_CHARGE_CONTROL_CONFIG,
  config({ derating_mode: 'step', cvl_controller: 'integral', ccl_soc_enable: 'true', dcl_soc_enable: 'true' }),
  config({ cvl_controller: 'clipped', voltage_drop: '0.25', float_after: '5', float_transition_rate: '0.05' }),
  config({
    soc_reset_after_days: '0.001',
    soc_reset_cell_voltage: '3.55',
    ccl_cell_voltages: '3.58, 3.5, 3.45, 3.4, 3.375',
    ccl_cell_voltage_fractions: '0, 0.05, 0.1, 0.25, 1',
    float_after: '3',
    cvl_recovery_hold: '2',
    cvl_recovery_rate: '0.05',
  }),
  config({
    ccl_recovery_hold: '0',
    ccl_recovery_rate: '0',
    dcl_recovery_hold: '0',
    dcl_recovery_rate: '0',
    current_decrease_interval: '0',
    cvl_recovery_hold: '0',
    cvl_recovery_rate: '0',
    charge_request_soc: '20',
  }),
  config({ float_enable: 'false', cvl_controller: 'off', max_charge_current: '0', max_discharge_current: '300' }),
  config({
    max_charge_current: '200',
    bulk_soc_threshold: 'off',
    bulk_cell_diff: 'off',
    float_switch_cell_diff: 'off',
    float_after: '1',
  }),
  // Curves off: only the hard gates stand between a cell at OVP and the charger.
  config({
    ccl_cell_voltage_enable: 'false',
    dcl_cell_voltage_enable: 'false',
    ccl_temperature_enable: 'false',
    dcl_temperature_enable: 'false',
    ccl_mos_temperature_enable: 'false',
    dcl_mos_temperature_enable: 'false',
  }),
  // Short holds and slow ramps, so recoveries run to completion within a sequence.
  config({
    ccl_recovery_hold: '2',
    ccl_recovery_rate: '2',
    dcl_recovery_hold: '1',
    dcl_recovery_rate: '3',
    current_decrease_interval: '5',
    ccl_recovery_threshold_percent: '10',
  }),
];

// ---- arbitraries ----------------------------------------------------------------------------------------

/** Cell voltages with their boundaries (UVP, min, float, max, OVP, reset) over-represented. */
const cellVoltage = fc.oneof(
  { weight: 2, arbitrary: fc.double({ min: 3.1, max: 3.5, noNaN: true }) },
  fc.double({ min: 2.5, max: 3.75, noNaN: true }),
  fc.constantFrom(2.8, 2.801, 2.9, 3.19, 3.375, 3.44, 3.45, 3.455, 3.5, 3.55, 3.58, 3.599, 3.6, 3.65),
);
const temperature = fc.oneof(
  { weight: 3, arbitrary: fc.double({ min: 5, max: 45, noNaN: true }) },
  fc.double({ min: -30, max: 75, noNaN: true }),
  fc.constantFrom(-20, -20.1, -0.1, 0, 10, 45, 55, 55.1, 60, 60.1),
);
const protection: fc.Arbitrary<ProtectionFlags> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTECTION_FLAG_NAMES).map((f) => ({ [f]: true }) as ProtectionFlags) },
);
const fet = fc.oneof({ weight: 10, arbitrary: fc.constant(true) }, fc.constant(false), fc.constant(undefined));

/** Cells: a base voltage, a little deterministic jitter, one outlier; rarely broken. */
const cellList = fc
  .record({
    base: cellVoltage,
    jitterMv: fc.integer({ min: 0, max: 40 }),
    outlier: fc.option(fc.tuple(fc.nat(), cellVoltage), { freq: 2 }),
    broken: fc.oneof(
      { weight: 30, arbitrary: fc.constant('none' as const) },
      fc.constantFrom('missing' as const, 'nan' as const, 'zero' as const),
    ),
  })
  .map(({ base, jitterMv, outlier, broken }) => (n: number): number[] | undefined => {
    if (broken === 'missing') return undefined;
    const cells = Array.from({ length: n }, (_, i) => base + ((((i * 7) % 5) - 2) * jitterMv) / 2000);
    if (outlier) cells[outlier[0] % n] = outlier[1];
    if (broken === 'nan') cells[0] = Number.NaN;
    if (broken === 'zero') cells[n - 1] = 0;
    return cells;
  });

interface Step {
  dtMs: number;
  /** The same input this many times in a row: conditions that persist are what timers act on. */
  repeat: number;
  health: Health;
  snapshot: ((n: number) => BatterySnapshot) | undefined;
}

const snapshotArb = fc
  .record({
    cells: cellList,
    temps: fc.array(temperature, { maxLength: 3 }),
    mos: fc.option(fc.double({ min: 20, max: 100, noNaN: true }), { nil: undefined }),
    soc: fc.option(fc.double({ min: 0, max: 100, noNaN: true }), { nil: undefined }),
    chargeFet: fet,
    dischargeFet: fet,
    protection,
    bms: fc.option(
      fc.record(
        {
          chargeCurrent: fc.oneof(fc.double({ min: -5, max: 250, noNaN: true }), fc.constant(Number.NaN)),
          dischargeCurrent: fc.double({ min: 0, max: 250, noNaN: true }),
          chargeVoltage: fc.double({ min: 10, max: 60, noNaN: true }),
        },
        { requiredKeys: [] },
      ),
      { freq: 3, nil: undefined },
    ),
  })
  .map(
    (r) =>
      (n: number): BatterySnapshot => ({
        timestampMs: 0,
        cellVoltages: r.cells(n),
        temperatures: r.temps.map((celsius, i) => ({ name: `T${i}`, celsius })),
        mosTemperature: r.mos,
        soc: r.soc,
        chargeFet: r.chargeFet,
        dischargeFet: r.dischargeFet,
        protection: r.protection,
        identity: {},
        bmsLimits: r.bms,
      }),
  );

const stepArb: fc.Arbitrary<Step> = fc.record({
  dtMs: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 2_000 }) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 120_000 }) },
    fc.constantFrom(-3_600_000, 86_400_000 * 400),
  ),
  repeat: fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, fc.integer({ min: 2, max: 30 })),
  health: fc.oneof(
    { weight: 8, arbitrary: fc.constant<Health>('online') },
    fc.constantFrom<Health>('stale', 'offline'),
  ),
  snapshot: fc.option(snapshotArb, { freq: 12, nil: undefined }),
});

/** A state as it could have been persisted, with arbitrary controller and limit memory on top. */
const stateArb: fc.Arbitrary<ChargeState> = fc
  .record({
    persisted: fc.record({
      mode: fc.constantFrom('bulk', 'float'),
      absorptionMs: fc.option(fc.integer({ min: 0, max: 2_000_000 }), { nil: null }),
      transitionVoltage: fc.option(fc.double({ min: 1, max: 80, noNaN: true }), { nil: null }),
      socResetDue: fc.boolean(),
      socResetElapsedMs: fc.integer({ min: 0, max: 200_000 }),
    }),
    ccl: fc.option(fc.double({ min: 0, max: 400, noNaN: true }), { nil: null }),
    dcl: fc.option(fc.double({ min: 0, max: 400, noNaN: true }), { nil: null }),
    controller: fc.option(fc.double({ min: 1, max: 80, noNaN: true }), { nil: null }),
    holdMs: fc.integer({ min: 0, max: 100_000 }),
  })
  .map(({ persisted: p, ccl, dcl, controller, holdMs }) => {
    const text = JSON.stringify({
      v: 1,
      ...p,
      absorptionMs: p.mode === 'bulk' ? p.absorptionMs : null,
      transitionVoltage: p.mode === 'float' ? p.transitionVoltage : null,
      lastSocResetMs: null,
    });
    const s = parseChargeState(text);
    // Memory from another config or cell count (in-memory only; never persisted).
    return {
      ...s,
      controllerVoltage: s.mode === 'bulk' ? controller : null,
      controllerHoldMs: holdMs,
      ccl: { ...s.ccl, published: ccl },
      dcl: { ...s.dcl, published: dcl },
    };
  });

interface Scenario {
  cfg: ChargeControlConfig;
  cells: number;
  start: ChargeState;
  steps: Step[];
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  cfg: fc.constantFrom(...CONFIGS),
  cells: fc.constantFrom(4, 8, 15, 16),
  start: fc.oneof(fc.constant(freshChargeState()), stateArb),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 20 }),
});

// ---- the invariants -------------------------------------------------------------------------------------

function fail(message: string): never {
  throw new Error(message);
}

const CHARGE_PROTECTION: (keyof ProtectionFlags)[] = [
  'cellOverVoltage',
  'packOverVoltage',
  'chargeOverTemperature',
  'chargeUnderTemperature',
  'chargeOverCurrent',
  'shortCircuit',
];
const DISCHARGE_PROTECTION: (keyof ProtectionFlags)[] = [
  'cellUnderVoltage',
  'packUnderVoltage',
  'dischargeOverTemperature',
  'dischargeUnderTemperature',
  'dischargeOverCurrent',
  'shortCircuit',
];

/** Runs one scenario and checks every output. */
function checkScenario({ cfg, cells: n, start, steps }: Scenario): void {
  let state = start;
  let now = Date.UTC(2025, 0, 1);
  for (const step of steps) for (let i = 0; i < step.repeat; i++) checkStep(step);

  function checkStep(step: Step): void {
    now += step.dtMs;
    const snap = step.snapshot?.(n);
    const before = state;
    const r = chargeControl({ snapshot: snap, health: step.health, cellCount: n }, state, cfg, now);
    state = r.state;
    const L = r.limits;
    const ctx = () => JSON.stringify({ snap, health: step.health, L }, (_k, v) => (Number.isNaN(v) ? 'NaN' : v));

    for (const [name, v] of [
      ['CCL', L.chargeCurrent],
      ['DCL', L.dischargeCurrent],
      ['CVL', L.chargeVoltage],
      ['BatteryLowVoltage', L.batteryLowVoltage],
      ['MaxChargeCellVoltage', L.maxChargeCellVoltage],
    ] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${name} is not a finite number: ${ctx()}`);
    }
    if (L.chargeRequest !== 0 && L.chargeRequest !== 1) fail(`ChargeRequest ${L.chargeRequest}`);

    // Currents stay within [0, configured max] and never above the BMS's own limit.
    if (L.chargeCurrent < 0 || L.chargeCurrent > cfg.maxChargeCurrent) fail(`CCL out of range: ${ctx()}`);
    if (L.dischargeCurrent < 0 || L.dischargeCurrent > cfg.maxDischargeCurrent) fail(`DCL out of range: ${ctx()}`);
    const bmsC = snap?.bmsLimits?.chargeCurrent;
    if (bmsC !== undefined && L.chargeCurrent > (Number.isFinite(bmsC) ? Math.max(bmsC, 0) : 0)) {
      fail(`CCL above the BMS limit: ${ctx()}`);
    }
    const bmsD = snap?.bmsLimits?.dischargeCurrent;
    if (bmsD !== undefined && L.dischargeCurrent > bmsD) fail(`DCL above the BMS limit: ${ctx()}`);

    // Hard stops.
    const cellsV = snap?.cellVoltages;
    const temps = snap?.temperatures?.map((t) => t.celsius) ?? [];
    // A BMS-managed battery (no cells, its own CVL/CCL/DCL) has data: its own limits are the ceiling (checked above).
    const managed = bmsManaged(snap);
    const noData =
      step.health !== 'online' ||
      snap === undefined ||
      (!managed &&
        (cellsV === undefined || cellsV.length === 0 || cellsV.some((c) => !Number.isFinite(c) || c <= 0))) ||
      temps.some((t) => !Number.isFinite(t));
    const p = snap?.protection ?? {};
    const chargeStop =
      noData ||
      (cellsV ?? []).some((c) => c >= cfg.cellOvpVoltage) ||
      snap?.chargeFet === false ||
      temps.some((t) => t < cfg.chargeMinTemperature || t > cfg.chargeMaxTemperature) ||
      CHARGE_PROTECTION.some((f) => p[f] === true);
    const dischargeStop =
      noData ||
      (cellsV ?? []).some((c) => c <= cfg.cellUvpVoltage) ||
      snap?.dischargeFet === false ||
      temps.some((t) => t < cfg.dischargeMinTemperature || t > cfg.dischargeMaxTemperature) ||
      DISCHARGE_PROTECTION.some((f) => p[f] === true);
    if (chargeStop && L.chargeCurrent !== 0) fail(`CCL not 0 on a hard stop: ${ctx()}`);
    if (dischargeStop && L.dischargeCurrent !== 0) fail(`DCL not 0 on a hard stop: ${ctx()}`);

    // CVL between BatteryLowVoltage and the max voltage in force (+ drop); 0.5 mV is the publishing resolution.
    const cvl = L.chargeVoltage as number;
    const blv = L.batteryLowVoltage as number;
    const cellCount = (cellsV?.length || n) as number;
    const perCell = state.socResetDue ? cfg.socResetCellVoltage : cfg.maxCellVoltage;
    if (cvl > cellCount * perCell + cfg.voltageDrop + 5e-4) fail(`CVL above the max voltage: ${ctx()}`);
    if (cvl < blv) fail(`CVL below BatteryLowVoltage: ${ctx()}`);
    const bmsV = snap?.bmsLimits?.chargeVoltage;
    if (bmsV !== undefined && cvl > Math.max(bmsV, blv) + cfg.voltageDrop + 5e-4) fail(`CVL above the BMS: ${ctx()}`);
    if (noData && cvl > cellCount * cfg.floatCellVoltage + cfg.voltageDrop + 5e-4) {
      fail(`CVL above float without data: ${ctx()}`);
    }

    // Anti-flap: an increase never outruns the recovery ramp (the start-up publication aside).
    const dt = Math.min(Math.max(step.dtMs, 0), 10_000) / 1000;
    for (const [dir, prev, out] of [
      ['charge', before.ccl.published, L.chargeCurrent],
      ['discharge', before.dcl.published, L.dischargeCurrent],
    ] as const) {
      const d = dir === 'charge' ? cfg.charge : cfg.discharge;
      if (prev !== null && d.recoveryRate > 0 && out > prev + d.recoveryRate * dt + 1e-6) {
        fail(`${dir} limit rose faster than the ramp (${prev} → ${out} in ${dt} s): ${ctx()}`);
      }
    }
  }
}

describe('charge-control safety properties', () => {
  test(
    'for any input sequence every output is finite, currents stay within config and BMS limits, hard stops give 0, and CVL stays within its bounds',
    () => {
      fc.assert(fc.property(scenario, checkScenario), PARAMS);
    },
    TIMEOUT,
  );

  test(
    'any reachable state survives serialise → parse with its cycle intact',
    () => {
      fc.assert(
        fc.property(scenario, ({ cfg, cells: n, start, steps }) => {
          let state = start;
          let now = Date.UTC(2025, 0, 1);
          for (const step of steps) {
            for (let i = 0; i < step.repeat; i++) {
              now += step.dtMs;
              const input = { snapshot: step.snapshot?.(n), health: step.health, cellCount: n };
              state = chargeControl(input, state, cfg, now).state;
            }
          }
          const restored = parseChargeState(serializeChargeState(state));
          const same =
            restored.mode === state.mode &&
            restored.socResetDue === state.socResetDue &&
            restored.absorptionMs === (state.absorptionMs === null ? null : Math.round(state.absorptionMs)) &&
            (restored.transitionVoltage === null) === (state.transitionVoltage === null) &&
            // Saved to the millivolt.
            Math.abs((restored.transitionVoltage ?? 0) - (state.transitionVoltage ?? 0)) <= 5e-4 + 1e-9;
          if (!same) fail(`state changed in the round trip: ${serializeChargeState(state)}`);
        }),
        PARAMS,
      );
    },
    TIMEOUT,
  );

  test(
    'parseChargeState never throws and always returns a usable state, whatever the text',
    () => {
      const text = fc.oneof(
        fc.string(),
        fc.json(),
        fc.jsonValue().map((v) => JSON.stringify({ v: 1, mode: 'bulk', garbage: v })),
      );
      fc.assert(
        fc.property(text, (t) => {
          const s = parseChargeState(t);
          const r = chargeControl(
            { snapshot: undefined, health: 'offline', cellCount: 16 },
            s,
            DEFAULT_CHARGE_CONTROL_CONFIG,
            0,
          );
          if (r.limits.chargeCurrent !== 0 || !Number.isFinite(r.limits.chargeVoltage))
            fail(`unusable state from ${t}`);
        }),
        PARAMS,
      );
    },
    TIMEOUT,
  );
});
