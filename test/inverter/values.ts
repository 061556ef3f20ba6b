/** InverterValues for the encoder tests: a healthy 16S bank, override what a test needs. */
import type { InverterAlarms, InverterValues } from '../../src/inverter/inverter-view.js';

export const NO_ALARMS: InverterAlarms = {
  highVoltage: 0,
  lowVoltage: 0,
  highTemperature: 0,
  lowTemperature: 0,
  highChargeTemperature: 0,
  lowChargeTemperature: 0,
  highDischargeCurrent: 0,
  highChargeCurrent: 0,
  shortCircuit: 0,
  internalFailure: 0,
  cellImbalance: 0,
  communication: 0,
};

export function values(over: Partial<InverterValues> = {}): InverterValues {
  return {
    usable: true,
    chargeBlocked: '',
    dischargeBlocked: '',
    chargeVoltage: 55.2,
    dischargeVoltage: 46.4,
    chargeCurrent: 100,
    dischargeCurrent: 120,
    chargeEnable: true,
    dischargeEnable: true,
    forceCharge: false,
    soc: 60,
    soh: 100,
    voltage: 52.8,
    current: 10,
    temperature: 25,
    minTemperature: 24,
    maxTemperature: 26,
    minCellVoltage: 3.3,
    maxCellVoltage: 3.31,
    capacityInstalled: 280,
    capacityRemaining: 168,
    cellsInSeries: 16,
    modules: { online: 1, offline: 0, blockingCharge: 0, blockingDischarge: 0 },
    alarms: NO_ALARMS,
    ...over,
  };
}
