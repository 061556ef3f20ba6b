import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LinkError } from '../../src/domain/errors.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { ByteSink, closeAllPairs, openPair, removeDir, sleep, tempLinkDir, waitFor } from '../support/pty.js';

const dir = tempLinkDir();
const links: SerialLink[] = [];
function track(link: SerialLink): SerialLink {
  links.push(link);
  return link;
}
afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.close()));
  await closeAllPairs();
});
afterAll(() => removeDir(dir));

describe('SerialLink on a real pty', () => {
  it('describes itself by the device basename', () => {
    expect(new SerialLink({ path: '/dev/ttyUSB0' }).description).toBe('Serial ttyUSB0');
    expect(new SerialLink({ path: '/dev/serial/by-id/usb-FTDI-if00' }).baudRate).toBe(9600);
  });

  it('moves bytes both ways binary-clean, including XON/XOFF, CR, LF and NUL', async () => {
    const pair = await openPair({ link: join(dir, 'clean') });
    const link = track(new SerialLink({ path: pair.driverPath }));
    expect(link.isOpen).toBe(false);
    await link.open();
    expect(link.isOpen).toBe(true);
    const atDriver = new ByteSink();
    const atDevice = new ByteSink();
    link.onData(atDriver.push);
    pair.device.onData(atDevice.push);

    const tricky = Uint8Array.of(0x00, 0x0a, 0x0d, 0x11, 0x13, 0x03, 0x04, 0x1a, 0x7f, 0xdd, 0x77, 0xff);
    await link.send(tricky);
    expect(await atDevice.waitFor(tricky.length)).toEqual(tricky);
    await pair.device.send(tricky);
    expect(await atDriver.waitFor(tricky.length)).toEqual(tricky);
  });

  it('rejects open() of a missing device with a LinkError naming the path', async () => {
    const path = join(dir, 'no-such-tty');
    const link = track(new SerialLink({ path }));
    const err = await link.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LinkError);
    expect((err as Error).message).toContain(path);
    expect(link.isOpen).toBe(false);
  });

  it('rejects send() with a LinkError while not open, without waiting for anything', async () => {
    const link = track(new SerialLink({ path: join(dir, 'never-opened') }));
    await expect(link.send(Uint8Array.of(1))).rejects.toBeInstanceOf(LinkError);
  });

  it('keeps delivering data to other receivers when one receiver throws', async () => {
    const pair = await openPair();
    const link = track(new SerialLink({ path: pair.driverPath }));
    await link.open();
    link.onData(() => {
      throw new Error('buggy receiver');
    });
    const sink = new ByteSink();
    link.onData(sink.push);
    await pair.device.send(Uint8Array.of(9, 8, 7));
    expect(await sink.waitFor(3)).toEqual(Uint8Array.of(9, 8, 7));
    expect(link.isOpen).toBe(true);
  });

  it('closes idempotently, never rejects, and does not report its own close() through onClose', async () => {
    const pair = await openPair();
    const link = track(new SerialLink({ path: pair.driverPath }));
    const reasons: Error[] = [];
    link.onClose((r) => reasons.push(r));
    await link.close(); // before any open
    await link.open();
    await Promise.all([link.close(), link.close()]);
    await link.close();
    expect(link.isOpen).toBe(false);
    await sleep(50);
    expect(reasons).toEqual([]);
    await expect(link.send(Uint8Array.of(1))).rejects.toBeInstanceOf(LinkError);
  });

  it('can be reopened after close() and carries data again', async () => {
    const pair = await openPair();
    const link = track(new SerialLink({ path: pair.driverPath }));
    await link.open();
    await link.close();
    await link.open();
    const atDevice = new ByteSink();
    pair.device.onData(atDevice.push);
    await link.send(Uint8Array.of(0x42));
    expect(await atDevice.waitFor(1)).toEqual(Uint8Array.of(0x42));
  });
});

describe('SerialLink when the peer vanishes', () => {
  /**
   * serialport reacts to a vanished pty master in one of two ways (test-lab.md §1): a 'close' event within a few
   * ms, or nothing until a write fails with EIO. Either way the link must end up closed, report it exactly
   * once, and fail sends with a LinkError instead of hanging.
   */
  it('reports the loss exactly once and fails the next send when the link sits idle after the unplug', async () => {
    const styles = { closeEvent: 0, writeError: 0 };
    for (let round = 0; round < 4; round++) {
      const pair = await openPair();
      const link = track(new SerialLink({ path: pair.driverPath }));
      const reasons: Error[] = [];
      link.onClose((r) => reasons.push(r));
      await link.open();
      await pair.close();
      // Give serialport a moment to notice by itself; if it does not, the first write discovers it.
      await sleep(100);
      if (reasons.length === 1) styles.closeEvent++;
      else styles.writeError++;
      const err = await link.send(Uint8Array.of(0xdd, 0xa5, 0x03, 0x00, 0xff, 0xfd, 0x77)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LinkError);
      await waitFor(() => reasons.length > 0, 2000, 'onClose');
      await sleep(50); // a second 'close' / 'error' from serialport must not produce a second report
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toBeInstanceOf(LinkError);
      expect(link.isOpen).toBe(false);
      await expect(link.send(Uint8Array.of(1))).rejects.toBeInstanceOf(LinkError);
    }
    expect(styles.closeEvent + styles.writeError).toBe(4);
  });

  it('fails writes made the moment the device vanishes with a LinkError, never a hang, and reports the loss once', async () => {
    for (let round = 0; round < 4; round++) {
      const pair = await openPair();
      const link = track(new SerialLink({ path: pair.driverPath }));
      const reasons: Error[] = [];
      link.onClose((r) => reasons.push(r));
      await link.open();
      await pair.close();
      // Write at once, before serialport's poller can notice: the write itself must fail, not hang.
      const results = await Promise.allSettled([link.send(Uint8Array.of(1)), link.send(Uint8Array.of(2))]);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LinkError);
      }
      // At most the very first write can slip into the kernel buffer before the hang-up is seen.
      expect(results.filter((r) => r.status === 'rejected').length).toBeGreaterThanOrEqual(1);
      await waitFor(() => reasons.length > 0, 2000, 'onClose');
      await sleep(50);
      expect(reasons).toHaveLength(1);
      expect(link.isOpen).toBe(false);
    }
  });

  it('fails to reopen while the device is missing and reopens once it is back at the same path', async () => {
    const path = join(dir, 'replug');
    const first = await openPair({ link: path });
    const link = track(new SerialLink({ path }));
    const reasons: Error[] = [];
    link.onClose((r) => reasons.push(r));
    await link.open();
    await first.close();
    await link.send(Uint8Array.of(1)).catch(() => undefined);
    await waitFor(() => reasons.length > 0, 2000, 'onClose');

    await expect(link.open()).rejects.toBeInstanceOf(LinkError);
    const second = await openPair({ link: path });
    await link.open();
    const atDevice = new ByteSink();
    second.device.onData(atDevice.push);
    await link.send(Uint8Array.of(0x55, 0xaa));
    expect(await atDevice.waitFor(2)).toEqual(Uint8Array.of(0x55, 0xaa));
    expect(reasons).toHaveLength(1);
  });
});
