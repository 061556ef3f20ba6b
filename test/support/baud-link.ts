/** Serial links for autodetect tests: a pty that behaves like a UART at one baud rate only. */
import type { Link } from '../../src/links/link.js';
import { SerialLink } from '../../src/links/serial-link.js';
import { createRandom } from '../../src/sim/random.js';

/**
 * A UART at the wrong rate samples every byte wrongly, both ways: the device gets noise instead of our request and we
 * get noise instead of anything it sends. This link does that to the pty whenever the rate is not `deviceBaud`.
 */
export function atDeviceBaud(deviceBaud: number): (path: string, baudRate: number) => Link<Uint8Array> {
  return (path, baudRate) => {
    const inner = new SerialLink({ path, baudRate });
    if (baudRate === deviceBaud) return inner;
    const rnd = createRandom(baudRate);
    const garble = (bytes: Uint8Array) => bytes.map((b) => (b ^ rnd.int(1, 255)) & 0xff);
    return {
      description: inner.description,
      get isOpen() {
        return inner.isOpen;
      },
      open: () => inner.open(),
      close: () => inner.close(),
      send: (m) => inner.send(garble(m)),
      onData: (l) => inner.onData((c) => l(garble(c))),
      onClose: (l) => inner.onClose(l),
    };
  };
}
