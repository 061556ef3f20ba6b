/**
 * The main-thread serial binding on real pseudo-terminals: serialport's open/close around our reads and writes.
 * It must keep serialport's binding contract (at least one byte per read, `canceled` on close, big writes
 * complete) and must really be the one in use — and take no libuv pool thread for a read or a write.
 */
import { createHook } from 'node:async_hooks';
import { afterEach, describe, expect, test } from 'vitest';
import { mainThreadBinding } from '../../src/links/serial-binding.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { closeAllPairs, openPair, waitFor } from '../support/pty.js';

afterEach(async () => {
  await closeAllPairs();
});

const options = (path: string) => ({
  path,
  baudRate: 9600,
  dataBits: 8 as const,
  lock: false,
  stopBits: 1 as const,
  parity: 'none' as const,
  rtscts: false,
  xon: false,
  xoff: false,
  xany: false,
  hupcl: true,
});

describe('mainThreadBinding', () => {
  test('is not serialport’s own port object on Linux, and reads what the device sends, at least one byte', async () => {
    const pair = await openPair();
    const binding = mainThreadBinding();
    const port = await binding.open(options(pair.driverPath));
    try {
      expect(port.constructor.name).toBe('MainThreadPort');
      const buf = Buffer.alloc(64);
      const reading = port.read(buf, 0, 64);
      await pair.device.send(Uint8Array.of(0xdd, 0x03, 0x00));
      const { bytesRead } = await reading;
      expect(bytesRead).toBeGreaterThanOrEqual(1);
      expect([...buf.subarray(0, bytesRead)]).toEqual([0xdd, 0x03, 0x00].slice(0, bytesRead));
    } finally {
      await port.close();
    }
  });

  test('a read under way when the port closes rejects with canceled', async () => {
    const pair = await openPair();
    const port = await mainThreadBinding().open(options(pair.driverPath));
    const outcome = port.read(Buffer.alloc(16), 0, 16).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await port.close();
    expect(await outcome).toMatchObject({ canceled: true });
  });

  test('a 20 kB write completes through the poller and arrives whole and in order', async () => {
    const pair = await openPair();
    const got: number[] = [];
    pair.device.onData((c) => got.push(...c));
    const port = await mainThreadBinding().open(options(pair.driverPath));
    try {
      const data = Buffer.from(Array.from({ length: 20_000 }, (_, i) => i % 251));
      await port.write(data);
      await waitFor(() => got.length >= data.length, 10_000, 'all bytes at the device');
      expect(Buffer.from(got).equals(data)).toBe(true);
    } finally {
      await port.close();
    }
  });
});

describe('SerialLink on the main-thread binding', () => {
  test('request and reply round trips use no pool thread: no fs request is created for a read or a write', async () => {
    const pair = await openPair();
    pair.device.onData((c) => void pair.device.send(Uint8Array.from(c, (b) => b ^ 0xff)));
    const link = new SerialLink({ path: pair.driverPath });
    const replies: number[] = [];
    link.onData((m) => replies.push(...m));
    await link.open();
    // Every fs.read / fs.write on the pool creates an FSREQCALLBACK resource (serialport's own binding: one
    // per read attempt and per write); readSync / writeSync create none.
    let poolOps = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'FSREQCALLBACK') poolOps++;
      },
    }).enable();
    try {
      for (let i = 0; i < 20; i++) {
        const before = replies.length;
        await link.send(Uint8Array.of(i, i + 1));
        await waitFor(() => replies.length >= before + 2, 5000, `reply ${i}`);
      }
      hook.disable();
      expect(replies.slice(0, 4)).toEqual([0xff, 0xfe, 0xfe, 0xfd]);
      expect(replies).toHaveLength(40);
      expect(poolOps).toBe(0);
    } finally {
      hook.disable();
      await link.close();
    }
  });
});
