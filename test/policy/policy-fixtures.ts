/** What the charge-control tests share: a fixed start time and a policy config from INI-style key/values. */
import { type ChargeControlConfig, parseChargeControlConfig } from '../../src/policy/charge-control-config.js';

export const T0 = Date.UTC(2025, 5, 1, 12);

/** The policy config for these keys (as written in an INI file), every other key at its default. */
export function config(values: Record<string, string> = {}): ChargeControlConfig {
  return parseChargeControlConfig(
    (k) => values[k.toLowerCase()],
    () => 'test',
  );
}
