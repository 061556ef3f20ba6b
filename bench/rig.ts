/**
 * The pieces of a live run: simulated JBD batteries on pty pairs whose replies are time-stamped, and the
 * driver as a separate process (`cli.js run --config …`), exactly as daemontools starts it on the GX.
 *
 * Latency tagging: when a 0x03 request reaches a simulator, its current is set to a fresh value that names
 * the battery and the poll (the tag); every reply written for that poll stamps the tag with the time the
 * write returned (the bytes are then in the pty helper's pipe). The poll's last reply (0x04, or 0x05 on the
 * first poll) is the frame after which the driver publishes, so latency = ItemsChanged receipt − that stamp.
 * Both stamps come from this process's performance.now().
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { JBD_READ, JbdFramer, JbdRegister } from '../src/bms/jbd/protocol.js';
import { JbdSimulator, type SimTransport } from '../src/sim/jbd-simulator.js';
import { createPtyPair, type PtyPair } from '../src/sim/pty.js';

/** Tags of battery b: current −(1 + 2b … 2.99 + 2b) A, 10 mA apart (200 values, then they repeat). */
const TAG_SPAN = 200;
const TAGS_KEPT = 30;

interface Tag {
  readonly poll: number;
  /** performance.now() when the last reply written for this poll had been handed to the pty. */
  lastReplyAt: number | undefined;
}

export class TaggedBattery {
  /** Latency samples (ms) collected while `recording`. */
  readonly samples: number[] = [];
  /** Polls answered while recording whose value never appeared in an ItemsChanged. */
  unmatched = 0;
  recording = false;
  private recordFrom = Number.POSITIVE_INFINITY;
  private readonly tags = new Map<number, Tag>();
  private current: number | undefined;
  private poll = 0;

  private constructor(
    readonly index: number,
    readonly sim: JbdSimulator,
    readonly pair: PtyPair,
  ) {}

  static async create(index: number, cells: number): Promise<TaggedBattery> {
    const pair = await createPtyPair();
    const sim = new JbdSimulator({ cells, seed: 1000 + index });
    const self = new TaggedBattery(index, sim, pair);
    const requests = new JbdFramer();
    const transport: SimTransport = {
      send: (bytes) => {
        const sent = pair.device.send(bytes); // the pipe write happens synchronously in here
        self.stampReply(performance.now());
        return sent;
      },
      onData: (listener) => {
        pair.device.onData((chunk) => {
          for (const f of requests.push(chunk)) {
            if (f[1] === JBD_READ && f[2] === JbdRegister.basicInfo) self.nextTag();
          }
          listener(chunk);
        });
      },
    };
    sim.attach(transport);
    return self;
  }

  get path(): string {
    return this.pair.driverPath;
  }

  /** Does this /Dc/0/Current value carry one of our tags? */
  owns(current: number): boolean {
    return this.tagOf(current) !== undefined;
  }

  startRecording(): void {
    this.recording = true;
    this.recordFrom = performance.now();
  }

  /** Stop recording; polls stamped in the window and older than `graceMs` that never matched count as unmatched. */
  stopRecording(graceMs = 1500): void {
    const cutoff = performance.now() - graceMs;
    for (const tag of this.tags.values()) {
      if (tag.lastReplyAt !== undefined && tag.lastReplyAt >= this.recordFrom && tag.lastReplyAt < cutoff) {
        this.unmatched++;
      }
    }
    this.tags.clear();
    this.recording = false;
  }

  /** An ItemsChanged carried /Dc/0/Current = `current` at `receivedAt`. */
  onPublished(current: number, receivedAt: number): void {
    const key = this.tagOf(current);
    if (key === undefined) return;
    const tag = this.tags.get(key);
    if (tag === undefined) return;
    this.tags.delete(key);
    if (tag.lastReplyAt === undefined) return;
    if (this.recording && tag.lastReplyAt >= this.recordFrom) this.samples.push(receivedAt - tag.lastReplyAt);
  }

  async close(): Promise<void> {
    this.sim.detach();
    await this.pair.close();
  }

  private tagOf(current: number): number | undefined {
    const centi = Math.round(-current * 100);
    const base = 100 + TAG_SPAN * this.index;
    return centi >= base && centi < base + TAG_SPAN ? centi : undefined;
  }

  private nextTag(): void {
    this.poll++;
    const key = 100 + TAG_SPAN * this.index + (this.poll % TAG_SPAN);
    this.sim.setValues({ current: -key / 100 });
    this.current = key;
    this.tags.delete(key); // a tag from TAG_SPAN polls ago, long gone
    this.tags.set(key, { poll: this.poll, lastReplyAt: undefined });
    while (this.tags.size > TAGS_KEPT) {
      const [oldKey, old] = this.tags.entries().next().value as [number, Tag];
      this.tags.delete(oldKey);
      if (this.recording && old.lastReplyAt !== undefined && old.lastReplyAt >= this.recordFrom) this.unmatched++;
    }
  }

  private stampReply(t: number): void {
    if (this.current === undefined) return;
    const tag = this.tags.get(this.current);
    if (tag) tag.lastReplyAt = t;
  }
}

/** Node flags of the driver, as service/run starts it on the GX. */
export const DRIVER_NODE_FLAGS: readonly string[] = ['--max-old-space-size=128'];

export interface DriverProcess {
  readonly pid: number;
  /** performance.now() just before spawn(). */
  readonly spawnedAt: number;
  /** Rejects… never: resolves with how it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly hasExited: boolean;
  /** The last lines it logged (stdout and stderr). */
  logTail(): string[];
  /** SIGTERM (the driver publishes its disconnect), SIGKILL after 5 s. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnDriver(
  cliPath: string,
  configPath: string,
  busAddress: string,
  onChild: (child: ChildProcess) => void,
  extraNodeFlags: readonly string[] = [],
): DriverProcess {
  const tail: string[] = [];
  const keep = (d: Buffer) => {
    for (const line of d.toString().split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
    }
  };
  const spawnedAt = performance.now();
  const child = spawn(
    process.execPath,
    [...DRIVER_NODE_FLAGS, ...extraNodeFlags, cliPath, 'run', '--config', configPath],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: busAddress },
    },
  );
  onChild(child);
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    child.once('error', (e) => {
      tail.push(`spawn failed: ${e.message}`);
      done = true;
      resolve({ code: null, signal: null });
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot spawn ${process.execPath} ${cliPath}`);
  return {
    pid,
    spawnedAt,
    exited,
    get hasExited() {
      return done;
    },
    logTail: () => [...tail],
    stop: async () => {
      if (!done) {
        child.kill('SIGTERM');
        const guard = setTimeout(() => child.kill('SIGKILL'), 5000);
        const how = await exited;
        clearTimeout(guard);
        return how;
      }
      return exited;
    },
  };
}
