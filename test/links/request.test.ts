import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeRequest,
  encodeReadRequest,
  encodeResponse,
  extractFrames,
  JbdFramer,
} from '../../src/bms/jbd/protocol.js';
import { LinkError, TimeoutError } from '../../src/domain/errors.js';
import { RequestChannel } from '../../src/links/request.js';
import { SerialLink } from '../../src/links/serial-link.js';
import type { PtyPair } from '../../src/sim/pty.js';
import { closeAllPairs, openPair, sleep, waitFor } from '../support/pty.js';

/** Device side for these tests: hands every request register to `answer`, which writes whatever it likes. */
function serve(pair: PtyPair, answer: (register: number) => void | Promise<void>): void {
  let inbox: Uint8Array = new Uint8Array(0);
  pair.device.onData((chunk) => {
    const joined = new Uint8Array(inbox.length + chunk.length);
    joined.set(inbox);
    joined.set(chunk, inbox.length);
    const { frames, rest } = extractFrames(joined);
    inbox = rest;
    for (const f of frames) void answer(decodeRequest(f).register);
  });
}

const reply = (register: number, ...payload: number[]) => encodeResponse(register, Uint8Array.from(payload));
const isReplyTo = (register: number) => (f: Uint8Array) => f[1] === register;

let pair: PtyPair;
let link: SerialLink;
let framer: JbdFramer;
let channel: RequestChannel;

beforeEach(async () => {
  pair = await openPair();
  link = new SerialLink({ path: pair.driverPath });
  await link.open();
  framer = new JbdFramer();
  channel = new RequestChannel(link, framer);
});
afterEach(async () => {
  await link.close();
  await closeAllPairs();
});

describe('RequestChannel over a real pty', () => {
  it('resolves with the reply the predicate accepts', async () => {
    serve(pair, (reg) => pair.device.send(reply(reg, 0x12, 0x34)));
    const frame = await channel.request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 500 });
    expect(frame).toEqual(reply(0x03, 0x12, 0x34));
    expect(channel.stats).toEqual({ replies: 1, timeouts: 0, droppedFrames: 0 });
  });

  it('rejects with a TimeoutError when the device stays silent, and counts it', async () => {
    serve(pair, () => undefined);
    const err = await channel
      .request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 80 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(channel.stats.timeouts).toBe(1);
    expect(channel.pending).toBe(0);
  });

  it('drops and counts frames the predicate does not accept, and still takes the matching one', async () => {
    serve(pair, async (reg) => {
      await pair.device.send(reply(0x04, 0x0c, 0xe4)); // a late answer to some other request
      await pair.device.send(reply(0x05, 0x41)); // and another stray frame
      await pair.device.send(reply(reg, 0x01));
    });
    const frame = await channel.request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 500 });
    expect(frame).toEqual(reply(0x03, 0x01));
    expect(channel.stats.droppedFrames).toBe(2);
  });

  it('drops frames that arrive while no request is in flight', async () => {
    await pair.device.send(reply(0x03, 0x01));
    await sleep(50);
    expect(channel.stats.droppedFrames).toBe(1);
  });

  it('treats a predicate that throws as "not my reply" instead of letting it escape the data callback', async () => {
    serve(pair, (reg) => pair.device.send(reply(reg)));
    const err = await channel
      .request(encodeReadRequest(0x03), {
        isReply: () => {
          throw new Error('predicate bug');
        },
        timeoutMs: 100,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(channel.stats.droppedFrames).toBe(1);
  });

  it('keeps one request in flight at a time and serves queued requests in the order they were made', async () => {
    const seen: number[] = [];
    let outstanding = 0;
    let maxOutstanding = 0;
    serve(pair, async (reg) => {
      seen.push(reg);
      outstanding++;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
      await sleep(25); // a slow BMS: if the channel did not wait, the next request would arrive meanwhile
      outstanding--;
      await pair.device.send(reply(reg, reg));
    });
    const registers = [0x03, 0x04, 0x05, 0xaa];
    const results = await Promise.all(
      registers.map((r) => channel.request(encodeReadRequest(r), { isReply: isReplyTo(r), timeoutMs: 1000 })),
    );
    expect(seen).toEqual(registers);
    expect(maxOutstanding).toBe(1);
    expect(results).toEqual(registers.map((r) => reply(r, r)));
  });

  it('moves on to the next queued request after one times out', async () => {
    serve(pair, (reg) => (reg === 0x03 ? undefined : pair.device.send(reply(reg))));
    const first = channel.request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 60 });
    const second = channel.request(encodeReadRequest(0x04), { isReply: isReplyTo(0x04), timeoutMs: 500 });
    await expect(first).rejects.toBeInstanceOf(TimeoutError);
    await expect(second).resolves.toEqual(reply(0x04));
  });

  it('resets the framer after a timeout, so no half frame is carried into the next request', async () => {
    // The first "reply" is a header claiming 255 payload bytes that never come.
    const halfFrame = Uint8Array.of(0xdd, 0x03, 0x00, 0xff, 0x01, 0x02);
    let calls = 0;
    serve(pair, (reg) => pair.device.send(calls++ === 0 ? halfFrame : reply(reg, 0x07)));
    const first = channel.request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 400 });
    await waitFor(() => framer.pending === halfFrame.length, 300, 'the half frame to sit in the framer');
    await expect(first).rejects.toBeInstanceOf(TimeoutError);
    expect(framer.pending).toBe(0);
    const frame = await channel.request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 500 });
    expect(frame).toEqual(reply(0x03, 0x07));
  });

  it('rejects with a LinkError when the link is not open, and the queue goes on', async () => {
    await link.close();
    await expect(
      channel.request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 500 }),
    ).rejects.toBeInstanceOf(LinkError);
    await link.open();
    serve(pair, (reg) => pair.device.send(reply(reg)));
    await expect(
      channel.request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 500 }),
    ).resolves.toEqual(reply(0x03));
  });

  it('fails the in-flight request at once on abort() with the given reason', async () => {
    serve(pair, () => undefined);
    const pending = channel.request(encodeReadRequest(0x03), { isReply: isReplyTo(0x03), timeoutMs: 5000 });
    await sleep(20);
    const reason = new LinkError('link lost');
    channel.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(channel.stats.timeouts).toBe(0);
  });
});
