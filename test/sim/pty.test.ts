import { existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SerialLink } from '../../src/links/serial-link.js';
import { availablePtyBackends } from '../../src/sim/pty.js';
import { ByteSink, closeAllPairs, openPair, removeDir, tempLinkDir, waitFor } from '../support/pty.js';

const dir = tempLinkDir();
const links: SerialLink[] = [];
afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.close()));
  await closeAllPairs();
});
afterAll(() => removeDir(dir));

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);

it('finds at least one pty helper on this machine (script is part of util-linux)', () => {
  expect(availablePtyBackends().length).toBeGreaterThan(0);
});

describe.each(availablePtyBackends())('pty pair made with %s', (backend) => {
  it('carries all 256 byte values both ways between the device end and a serial port on the slave', async () => {
    const link = join(dir, `${backend}-a`);
    const pair = await openPair({ backend, link });
    expect(pair.driverPath).toBe(link);
    expect(readlinkSync(link)).toBe(pair.ttyPath);
    const port = new SerialLink({ path: pair.driverPath });
    links.push(port);
    await port.open();
    const atDevice = new ByteSink();
    const atDriver = new ByteSink();
    pair.device.onData(atDevice.push);
    port.onData(atDriver.push);

    await port.send(allBytes);
    expect(await atDevice.waitFor(256)).toEqual(allBytes);
    await pair.device.send(allBytes);
    expect(await atDriver.waitFor(256)).toEqual(allBytes);
  });

  it('removes the link when closed and can be created again at the same path', async () => {
    const link = join(dir, `${backend}-b`);
    const first = await openPair({ backend, link });
    await first.close();
    expect(first.isClosed).toBe(true);
    expect(existsSync(link)).toBe(false);

    const second = await openPair({ backend, link });
    expect(readlinkSync(link)).toBe(second.ttyPath);
    const port = new SerialLink({ path: link });
    links.push(port);
    await port.open();
    const atDriver = new ByteSink();
    port.onData(atDriver.push);
    await second.device.send(Uint8Array.of(1, 2, 3));
    expect(await atDriver.waitFor(3)).toEqual(Uint8Array.of(1, 2, 3));
  });

  it('keeps relaying after the driver closes and reopens its end', async () => {
    const pair = await openPair({ backend });
    const port = new SerialLink({ path: pair.driverPath });
    links.push(port);
    await port.open();
    await port.close();
    await port.open();
    const atDevice = new ByteSink();
    pair.device.onData(atDevice.push);
    await port.send(Uint8Array.of(0xdd, 0xa5, 0x03));
    expect(await atDevice.waitFor(3)).toEqual(Uint8Array.of(0xdd, 0xa5, 0x03));
    expect(pair.isClosed).toBe(false);
  });
});

it('refuses to replace a link path that is a regular file', async () => {
  const { writeFile, mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'regular-file');
  await writeFile(file, 'not a tty');
  await expect(openPair({ link: file })).rejects.toThrow(/not a symlink/);
  await waitFor(() => existsSync(file), 100, 'the file to be left alone');
});
