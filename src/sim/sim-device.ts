/**
 * Device-side transport plumbing shared by the serial BMS simulators: attach to / detach from a transport, collect
 * request frames from whatever arrives, and write replies strictly one after another (so split chunks never
 * interleave), applying the `garbage` / `split` / `latencyMs` fault knobs. Nothing it does can throw into the
 * transport's callback. The simulators keep their protocol logic (which frame is a request, what to answer,
 * `silent`, request counters); this only moves bytes.
 */
import type { Framer } from '../links/request.js';
import type { Random } from './random.js';

/** Anything that carries bytes to and from the driver: a `Link<Uint8Array>`, a pty master, a test double. */
export interface SimTransport {
  send(bytes: Uint8Array): unknown;
  onData(listener: (chunk: Uint8Array) => void): void;
}

/** Fault knobs of the reply path. */
export interface SimWireKnobs {
  /** Write a few random bytes before every reply. */
  garbage: boolean;
  /** Write replies in random 1–6 byte chunks, 1–4 ms apart. */
  split: boolean;
  /** Delay before each reply, ms. */
  latencyMs: number;
}

/** Keeps noise from containing frame starts, so noise never holds a real reply back. */
export interface NoiseFilter {
  /** Bytes the noise must not contain. */
  avoid(b: number): boolean;
  /** Added (mod 256) to an avoided byte until it is no longer avoided. */
  step: number;
}

export interface SimDeviceOptions {
  /** Random source for noise and split sizes (shared with the simulator's model, so seeded runs stay as they were). */
  rnd: Random;
  /** Knobs read when a reply is written (unless write() is given a snapshot). */
  knobs: SimWireKnobs;
  /** Frames requests out of the incoming bytes; reset on attach and detach. */
  framer: Framer;
  /** Unset: noise may hold any byte. */
  noise?: NoiseFilter;
}

/** The device end of a byte transport. */
export class SimDevice {
  /** Replies completely written. */
  replies = 0;

  private transport: SimTransport | undefined;
  private outQueue: Promise<void> = Promise.resolve();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly rnd: Random;
  private readonly knobs: SimWireKnobs;
  private readonly framer: Framer;
  private readonly noise: NoiseFilter | undefined;

  constructor(opts: SimDeviceOptions) {
    this.rnd = opts.rnd;
    this.knobs = opts.knobs;
    this.framer = opts.framer;
    this.noise = opts.noise;
  }

  /** Serve `transport` (replaces any previous one, e.g. after a re-plug); `onFrame` gets each complete frame. */
  attach(transport: SimTransport, onFrame: (frame: Uint8Array) => void): void {
    this.transport = transport;
    this.framer.reset();
    transport.onData((chunk) => {
      // A transport cannot unregister listeners, so a replaced one is ignored here.
      if (this.transport !== transport) return;
      try {
        for (const frame of this.framer.push(chunk)) onFrame(frame);
      } catch {
        // The simulator must never take its host process down.
      }
    });
  }

  /** Stop serving: forget the transport and cancel pending delayed writes. */
  detach(): void {
    this.transport = undefined;
    this.framer.reset();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Queue a reply on the current transport (with `knobs` as they are now, when given). */
  write(reply: Uint8Array, knobs: SimWireKnobs = this.knobs): void {
    const transport = this.transport;
    if (transport === undefined) return;
    // A dead transport is not the simulator's problem.
    this.outQueue = this.outQueue.then(() => this.send(transport, reply, knobs)).catch(() => undefined);
  }

  private async send(transport: SimTransport, reply: Uint8Array, knobs: SimWireKnobs): Promise<void> {
    if (knobs.latencyMs > 0) await this.delay(knobs.latencyMs);
    if (this.transport !== transport) return;
    if (knobs.garbage) {
      const noise = new Uint8Array(this.rnd.int(1, 12));
      for (let i = 0; i < noise.length; i++) {
        let b = this.rnd.int(0, 255);
        if (this.noise !== undefined) {
          while (this.noise.avoid(b)) b = (b + this.noise.step) & 0xff;
        }
        noise[i] = b;
      }
      await sendBytes(transport, noise);
    }
    if (!knobs.split) {
      await sendBytes(transport, reply);
    } else {
      let i = 0;
      while (i < reply.length) {
        const n = this.rnd.int(1, 6);
        await sendBytes(transport, reply.subarray(i, i + n));
        i += n;
        if (i < reply.length) await this.delay(this.rnd.int(1, 4));
        if (this.transport !== transport) return;
      }
    }
    this.replies++;
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }
}

function sendBytes(transport: SimTransport, bytes: Uint8Array): Promise<void> {
  try {
    return Promise.resolve(transport.send(bytes.slice())).then(
      () => undefined,
      () => undefined,
    );
  } catch {
    return Promise.resolve();
  }
}
