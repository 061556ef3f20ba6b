/**
 * The adapter side of a USB-CAN-A on a pty: what a Waveshare USB-CAN-A does towards the host, so a CAN simulator
 * can run on the host without SocketCAN. It answers nothing; it records the setup command it received and turns
 * frames into the adapter's serial framing (variable-length by default, or the fixed 20-byte mode).
 */
import type { CanFrame } from '../links/can/can-frame.js';
import { decodeUsbCanFrame, encodeFixed, encodeVariable, extractUsbCanFrames } from '../links/can/usbcan-a-protocol.js';
import type { PtyDevice } from './pty.js';

export class UsbCanADevice {
  /** Speed code of the last setup command received (0x03 = 500 kbit/s, 0x05 = 250 kbit/s). */
  speedCode: number | undefined;
  /** Frames the host sent. */
  readonly received: CanFrame[] = [];
  private pending: Uint8Array = new Uint8Array(0);

  constructor(
    private readonly device: PtyDevice,
    private readonly mode: 'variable' | 'fixed' = 'variable',
  ) {
    device.onData((chunk) => {
      const buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending);
      buf.set(chunk, this.pending.length);
      const { rest } = this.scan(buf);
      this.pending = rest;
    });
  }

  private scan(buf: Uint8Array): { rest: Uint8Array } {
    // Setup commands are fixed-format frames of type 0x12, which the data extractor refuses: look for them first.
    for (let i = 0; i + 20 <= buf.length; i++) {
      if (buf[i] === 0xaa && buf[i + 1] === 0x55 && buf[i + 2] === 0x12) {
        let s = 0;
        for (let k = 2; k < 19; k++) s += buf[i + k] as number;
        if ((s & 0xff) === buf[i + 19]) {
          this.speedCode = buf[i + 3];
          buf = Uint8Array.from([...buf.subarray(0, i), ...buf.subarray(i + 20)]);
          i--;
        }
      }
    }
    const { frames, rest } = extractUsbCanFrames(buf);
    for (const f of frames) this.received.push(decodeUsbCanFrame(f));
    return { rest };
  }

  /** Put a frame on the "bus" towards the host. */
  send(frame: CanFrame): Promise<void> {
    return this.device.send(this.mode === 'fixed' ? encodeFixed(frame) : encodeVariable(frame));
  }
}
