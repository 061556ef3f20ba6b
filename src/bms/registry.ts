/**
 * The only list of BMS families. One entry per family: how to name it, how to talk to it, how to make a
 * driver over a link. Config validation, the CLI and the composition root read it; nothing scans folders.
 */
import type { Link } from '../links/link.js';
import type { BmsDriver } from './driver.js';
import { JbdDriver } from './jbd/driver.js';

export interface DriverSettings {
  pollIntervalMs: number;
  replyTimeoutMs: number;
  now: () => number;
}

export interface BmsFamily {
  /** `protocol =` value in the config. */
  id: string;
  /** Default /ProductName. */
  productName: string;
  /** Default serial settings. */
  baudRate: number;
  createDriver(link: Link<Uint8Array>, settings: DriverSettings): BmsDriver;
}

export const FAMILIES: readonly BmsFamily[] = [
  {
    id: 'jbd',
    productName: 'JBD BMS',
    baudRate: 9600,
    createDriver: (link, s) =>
      new JbdDriver({ link, pollIntervalMs: s.pollIntervalMs, replyTimeoutMs: s.replyTimeoutMs, now: s.now }),
  },
];

export function findFamily(id: string): BmsFamily | undefined {
  return FAMILIES.find((f) => f.id === id);
}
