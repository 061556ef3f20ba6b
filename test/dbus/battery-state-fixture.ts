/** BatteryState builders shared by the D-Bus tests: a 12 V, 4-cell pack at a fixed time (test/support/battery-state.ts). */
import { batteryStateBuilders, PACK_12V } from '../support/battery-state.js';

export const { snapshot, limits, batteryState } = batteryStateBuilders(PACK_12V);
