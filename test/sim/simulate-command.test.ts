import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JbdDriver } from '../../src/bms/jbd/driver.js';
import type { BatterySnapshot } from '../../src/domain/battery-snapshot.js';
import { UsbCanALink } from '../../src/links/can/usbcan-a-link.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { simulateCommand } from '../../src/sim/simulate-command.js';
import { removeDir, tempLinkDir, waitFor } from '../support/pty.js';

const dir = tempLinkDir();
afterAll(() => removeDir(dir));

describe('simulateCommand', () => {
  it('prints "PTY <path>" first and serves a JBD BMS there until closed', async () => {
    const link = join(dir, 'ttyJBD');
    const lines: string[] = [];
    const sim = await simulateCommand({ family: 'jbd', cells: 8, link, seed: 3 }, (l) => lines.push(l));
    expect(lines[0]).toBe(`PTY ${link}`);
    expect(lines.slice(1).join('\n')).toMatch(/8 cells/);

    const driver = new JbdDriver({ link: new SerialLink({ path: link }), pollIntervalMs: 200 });
    const snapshots: BatterySnapshot[] = [];
    driver.onSnapshot((s) => snapshots.push(s));
    driver.start();
    try {
      await waitFor(() => snapshots.length >= 1, 5000, 'a snapshot');
      expect(snapshots[0]?.cellVoltages).toHaveLength(8);
      expect(snapshots[0]?.voltage).toBeGreaterThan(8 * 3.2);
      expect(snapshots[0]?.voltage).toBeLessThan(8 * 3.5);
    } finally {
      await driver.stop();
      await sim.close();
    }
    expect(existsSync(link)).toBe(false);
  });

  it('prints the /dev/pts path when no link is asked for', async () => {
    const lines: string[] = [];
    const sim = await simulateCommand({ family: 'jbd' }, (l) => lines.push(l));
    try {
      expect(lines[0]).toMatch(/^PTY \/dev\/pts\/\d+$/);
      expect(lines[1]).toMatch(/16 cells/);
    } finally {
      await sim.close();
    }
  });

  it.each(['jbd', 'jk-serial', 'jk-modbus', 'daly', 'pylontech', 'seplos'])(
    'serves a %s simulator on a pty and removes it when closed',
    async (family) => {
      const link = join(dir, `tty-${family}`);
      const lines: string[] = [];
      const sim = await simulateCommand({ family, link, seed: 1 }, (l) => lines.push(l));
      try {
        expect(lines[0]).toBe(`PTY ${link}`);
        expect(existsSync(link)).toBe(true);
      } finally {
        await sim.close();
      }
      expect(existsSync(link)).toBe(false);
    },
  );

  it('serves a Pylon CAN battery behind a simulated USB-CAN-A adapter on a pty', async () => {
    const lines: string[] = [];
    const sim = await simulateCommand({ family: 'pylon-can' }, (l) => lines.push(l));
    const link = new UsbCanALink({ path: (lines[0] ?? '').slice(4) });
    const ids = new Set<number>();
    link.onData((f) => ids.add(f.id));
    try {
      expect(lines[0]).toMatch(/^PTY \/dev\/pts\/\d+$/);
      await link.open();
      await waitFor(() => ids.has(0x351) && ids.has(0x356), 5000, 'Pylon frames 0x351 and 0x356');
    } finally {
      await link.close();
      await sim.close();
    }
  });

  it('rejects a family it cannot simulate and an impossible cell count', async () => {
    await expect(simulateCommand({ family: 'victron' }, () => undefined)).rejects.toThrow(/cannot simulate "victron"/);
    await expect(simulateCommand({ family: 'jbd', cells: 40 }, () => undefined)).rejects.toThrow(RangeError);
  });
});
