/**
 * A serialport binding whose reads and writes run on the main thread (Linux).
 *
 * serialport's Linux binding opens the device non-blocking and then reads and writes it with `fs.read` /
 * `fs.write`, which Node runs on a libuv pool thread: every reply chunk and every request crosses threads
 * (a futex wake-up each way, measured ~160/s with four batteries polled at 1 s) for a syscall that, on a
 * non-blocking descriptor, never waits. Here the same descriptor is read and written with `fs.readSync` /
 * `fs.writeSync` once the binding's own poller (epoll through libuv) says it is readable / writable, so
 * nothing leaves the event loop. Opening, closing, baud rate and control lines stay serialport's.
 *
 * The contract is serialport's BindingPortInterface: `read` resolves with at least one byte; reads and
 * writes under way when the port closes reject with `canceled`; errors are classified as serialport's Linux
 * binding does (EBADF, ENXIO, UNKNOWN → `disconnect`), so the stream above behaves exactly as before.
 */
import { readSync, writeSync } from 'node:fs';
import { SerialPort } from 'serialport';

/** serialport's detected binding (Linux, Darwin or Windows) and the port it opens. */
type DetectedBinding = typeof SerialPort.binding;
type BindingPortInterface = Awaited<ReturnType<DetectedBinding['open']>>;
type OpenOptions = Parameters<DetectedBinding['open']>[0];

/** What this binding needs of the platform port: its descriptor and poller (serialport's Linux port has both). */
type PolledPort = BindingPortInterface & {
  fd: number | null;
  readonly poller: {
    once(event: 'readable' | 'writable', callback: (err: Error | null) => void): unknown;
  };
};

type CodedError = Error & { code?: string; errno?: number; disconnect?: boolean; canceled?: boolean };

const RETRY = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);

function canceled(): CodedError {
  const e: CodedError = new Error('Port is not open');
  e.canceled = true;
  return e;
}

/** The error as serialport's own Linux binding reports it: a lost device is a disconnect. */
function classify(err: unknown): CodedError {
  const e = (err instanceof Error ? err : new Error(String(err))) as CodedError;
  if (e.code === 'EBADF' || e.code === 'ENXIO' || e.code === 'UNKNOWN' || e.errno === -1) {
    e.disconnect = true;
  }
  return e;
}

function wait(port: PolledPort, event: 'readable' | 'writable'): Promise<void> {
  return new Promise((resolve, reject) => {
    port.poller.once(event, (err) => (err ? reject(err) : resolve()));
  });
}

class MainThreadPort {
  private writing: Promise<void> | undefined;

  constructor(private readonly inner: PolledPort) {}

  get openOptions(): BindingPortInterface['openOptions'] {
    return this.inner.openOptions;
  }

  get isOpen(): boolean {
    return this.inner.isOpen;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    for (;;) {
      const fd = this.inner.fd;
      if (!this.inner.isOpen || fd === null) throw canceled();
      // Wait first: the poll is level-triggered, so data already there wakes it at once, and the normal path
      // never throws EAGAIN.
      await wait(this.inner, 'readable');
      if (!this.inner.isOpen || this.inner.fd !== fd) throw canceled();
      let n: number;
      try {
        n = readSync(fd, buffer, offset, length, null);
      } catch (err) {
        if (RETRY.has((err as CodedError).code ?? '')) continue;
        throw classify(err);
      }
      // 0 bytes from a tty: nothing this time (serialport's binding retries too); the next poll decides.
      if (n > 0) return { buffer, bytesRead: n };
    }
  }

  write(buffer: Buffer): Promise<void> {
    const op = this.writeAll(buffer).finally(() => {
      if (this.writing === op) this.writing = undefined;
    });
    this.writing = op;
    return op;
  }

  private async writeAll(buffer: Buffer): Promise<void> {
    let offset = 0;
    while (offset < buffer.length) {
      const fd = this.inner.fd;
      if (!this.inner.isOpen || fd === null) throw canceled();
      try {
        offset += writeSync(fd, buffer, offset, buffer.length - offset);
        continue;
      } catch (err) {
        if (!RETRY.has((err as CodedError).code ?? '')) throw classify(err);
      }
      await wait(this.inner, 'writable');
    }
  }

  update(options: Parameters<BindingPortInterface['update']>[0]): Promise<void> {
    return this.inner.update(options);
  }

  set(options: Parameters<BindingPortInterface['set']>[0]): Promise<void> {
    return this.inner.set(options as never);
  }

  get(): Promise<Awaited<ReturnType<BindingPortInterface['get']>>> {
    return this.inner.get();
  }

  getBaudRate(): ReturnType<BindingPortInterface['getBaudRate']> {
    return this.inner.getBaudRate();
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  async drain(): Promise<void> {
    await this.writing?.catch(() => undefined);
    return this.inner.drain();
  }
}

/**
 * serialport's detected binding with main-thread reads and writes on Linux; elsewhere (or a port without a
 * descriptor and poller) the detected binding unchanged.
 */
export function mainThreadBinding(): DetectedBinding {
  const detected = SerialPort.binding;
  if (process.platform !== 'linux') return detected;
  const binding = {
    list: () => detected.list(),
    async open(options: OpenOptions): Promise<BindingPortInterface> {
      const port = (await detected.open(options as never)) as BindingPortInterface & Partial<PolledPort>;
      if (typeof port.fd !== 'number' || typeof port.poller?.once !== 'function') return port;
      return new MainThreadPort(port as PolledPort) as unknown as BindingPortInterface;
    },
  };
  return binding as unknown as DetectedBinding;
}
