/**
 * JK-B…A…S "smart" BMS over Bluetooth LE (protocols.md §2.2): service 0xFFE0, characteristic 0xFFE1 for both
 * write and notify. Commands are 20 bytes; replies are the 300-byte JK02 records (55 AA EB 90, decoded by
 * ../jk-modbus/jk02-record.ts) cut into notifications. Pure.
 *
 *   command: AA 55 90 EB | cmd | len | 10 data bytes (LE) | 00 00 00 | sum8 (Σ bytes 0..18)
 *   0x97 → device info record (type 03); 0x96 → settings record (type 01), then cell info (type 02) streams
 * JK04 boards (hardware 2.x/3.x) send the same 300-byte frame with float values: ./jk04-record.ts.
 */
import { sum8 } from '../../bytes/checksum.js';
import { isValidRecordAt, JK02_HEADER, JK02_RECORD_LENGTH, type Jk02Layout } from '../jk-modbus/jk02-record.js';

export const JkBleCommand = { deviceInfo: 0x97, cellInfo: 0x96 } as const;

const COMMAND_HEADER = [0xaa, 0x55, 0x90, 0xeb] as const;
export const JK_BLE_COMMAND_LENGTH = 20;
/** Largest record some firmwares send (300 + padding). */
export const JK_BLE_MAX_RECORD = 320;

/** A 20-byte command; `value` goes LE into the data bytes with length `len`. */
export function encodeCommand(cmd: number, value = 0, len = 0): Uint8Array {
  const out = new Uint8Array(JK_BLE_COMMAND_LENGTH);
  out.set(COMMAND_HEADER, 0);
  out[4] = cmd & 0xff;
  out[5] = len & 0xff;
  new DataView(out.buffer).setUint32(6, value >>> 0, true);
  out[19] = sum8(out, 0, 19);
  return out;
}

/** A well-formed 20-byte command (header and checksum), for simulators. */
export function decodeCommand(raw: Uint8Array): { cmd: number; len: number; value: number } | undefined {
  if (raw.length < JK_BLE_COMMAND_LENGTH) return undefined;
  for (let k = 0; k < 4; k++) if (raw[k] !== COMMAND_HEADER[k]) return undefined;
  if (sum8(raw, 0, 19) !== raw[19]) return undefined;
  return {
    cmd: raw[4] as number,
    len: raw[5] as number,
    value: new DataView(raw.buffer, raw.byteOffset).getUint32(6, true),
  };
}

/** The protocol variant a device-info record's hardware version implies. */
export type JkBleVariant = Jk02Layout | 'jk04';

/** JK02_32S for hardware ≥ 11, JK04 for hardware 2.x / 3.x, JK02_24S otherwise (protocols.md §2.2). */
export function variantFromHardware(hardwareVersion: string): JkBleVariant {
  const major = Number.parseInt(hardwareVersion, 10);
  if (!Number.isFinite(major)) return 'jk02-24s';
  if (major >= 11) return 'jk02-32s';
  if (major === 2 || major === 3) return 'jk04';
  return 'jk02-24s';
}

/**
 * Reassembles records from notifications: a notification that starts with 55 AA EB 90 starts a new record
 * (whatever was pending is dropped); otherwise bytes are appended. A complete record with a valid checksum is
 * returned; anything else is dropped (and counted). The buffer never grows past JK_BLE_MAX_RECORD + one
 * notification.
 */
export class JkBleFramer {
  private buf = new Uint8Array(JK_BLE_MAX_RECORD * 2);
  private len = 0;
  /** Bytes dropped: no header, bad checksum, overflow. */
  discarded = 0;
  /** Records with a bad checksum. */
  badRecords = 0;

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (startsWithHeader(chunk, 0)) {
      this.discarded += this.len;
      this.len = 0;
    }
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, this.buf.length - this.len);
      this.buf.set(chunk.subarray(at, at + n), this.len);
      this.len += n;
      at += n;
      this.drain(out);
    }
    return out;
  }

  private drain(out: Uint8Array[]): void {
    for (;;) {
      const start = this.findHeader();
      if (start < 0) {
        // keep up to 3 bytes: a header may straddle two notifications
        const keep = Math.min(3, this.len);
        this.discarded += this.len - keep;
        this.buf.copyWithin(0, this.len - keep, this.len);
        this.len = keep;
        return;
      }
      if (start > 0) {
        this.discarded += start;
        this.buf.copyWithin(0, start, this.len);
        this.len -= start;
      }
      if (this.len < JK02_RECORD_LENGTH) return;
      if (isValidRecordAt(this.buf, 0)) {
        out.push(this.buf.slice(0, JK02_RECORD_LENGTH));
        // Trailing padding of a longer record is dropped by the header search.
        this.buf.copyWithin(0, JK02_RECORD_LENGTH, this.len);
        this.len -= JK02_RECORD_LENGTH;
      } else {
        this.badRecords++;
        this.discarded += 1;
        this.buf.copyWithin(0, 1, this.len);
        this.len -= 1;
      }
    }
  }

  private findHeader(): number {
    for (let i = 0; i + 4 <= this.len; i++) if (startsWithHeader(this.buf, i, this.len)) return i;
    return -1;
  }

  reset(): void {
    this.len = 0;
  }

  get pending(): number {
    return this.len;
  }
}

function startsWithHeader(bytes: Uint8Array, at: number, end = bytes.length): boolean {
  if (end - at < 4) return false;
  for (let k = 0; k < 4; k++) if (bytes[at + k] !== JK02_HEADER[k]) return false;
  return true;
}
