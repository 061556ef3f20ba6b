/**
 * BYD Atto 3 pack UDS polling (ReadDataByIdentifier 0x22). Pure. protocols.md §6.2, docs/protocols/byd.md.
 *
 *   request  0x7E7  `03 22 <PID hi> <PID lo> 00 00 00 00`
 *   reply    0x7EF  `<len> 62 <PID hi> <PID lo> <value LE…>` (ISO-TP single frame; the value is the len − 3 bytes)
 *   a multi-frame reply (first frame `1L LL 62 …`) is answered with the flow control `30 08 05 00 00 00 00 00` on
 *   0x7E7 and reassembled from its consecutive frames `2n …`.
 * No BYD checksum on these frames. A negative response (`03 7F 22 <NRC>`) carries no value and is ignored.
 */
import { FrameError } from '../../domain/errors.js';
import { round } from '../../domain/round.js';
import type { CanFrame } from '../../links/can/can-frame.js';
import type { BydState } from './protocol.js';

export const BYD_UDS_REQUEST_ID = 0x7e7;
export const BYD_UDS_REPLY_ID = 0x7ef;

/** The PIDs polled, protocols.md §6.2. */
export const BydPid = {
  soc: 0x0005,
  voltage: 0x0008,
  current: 0x0009,
  chargePowerLimit: 0x000a,
  dischargePowerLimit: 0x000e,
  cellVoltageMin: 0x002b,
  cellVoltageMax: 0x002d,
  cellTemperatureMin: 0x002f,
  cellTemperatureMax: 0x0031,
  cellTemperatureAverage: 0x0032,
} as const;

/** Round-robin order of the driver's polls. */
export const BYD_POLLED_PIDS: readonly number[] = Object.values(BydPid);

/** The flow control frame sent on 0x7E7 after a multi-frame reply's first frame. */
export const BYD_FLOW_CONTROL: CanFrame = {
  id: BYD_UDS_REQUEST_ID,
  ext: false,
  data: Uint8Array.of(0x30, 0x08, 0x05, 0, 0, 0, 0, 0),
};

export function bydPidRequest(pid: number): CanFrame {
  return { id: BYD_UDS_REQUEST_ID, ext: false, data: Uint8Array.of(0x03, 0x22, pid >> 8, pid & 0xff, 0, 0, 0, 0) };
}

/** The PID a 0x7E7 frame asks for, or undefined (flow control, other service). */
export function bydRequestedPid(frame: CanFrame): number | undefined {
  const d = frame.data;
  if (frame.ext || frame.id !== BYD_UDS_REQUEST_ID || d.length < 4 || d[0] !== 0x03 || d[1] !== 0x22) return undefined;
  return ((d[2] as number) << 8) | (d[3] as number);
}

/** What one 0x7EF frame did: a complete UDS payload, and/or the need to send flow control. */
export interface IsoTpStep {
  payload?: Uint8Array;
  flowControl?: boolean;
}

/** Reassembles 0x7EF ISO-TP frames (single, first + consecutive). Throws FrameError on malformed frames. */
export class BydIsoTpReceiver {
  private buffer: Uint8Array | undefined;
  private filled = 0;
  private nextSeq = 1;

  accept(data: Uint8Array): IsoTpStep {
    const pci = data[0];
    if (pci === undefined) throw new FrameError('bad-length', 'empty ISO-TP frame');
    switch (pci >> 4) {
      case 0: {
        const len = pci & 0x0f;
        if (len === 0 || len > data.length - 1) throw new FrameError('bad-length', `single frame length ${len}`);
        this.buffer = undefined;
        return { payload: data.slice(1, 1 + len) };
      }
      case 1: {
        const len = ((pci & 0x0f) << 8) | (data[1] ?? 0);
        if (data.length < 8 || len < 8) throw new FrameError('bad-length', `first frame length ${len}`);
        this.buffer = new Uint8Array(len);
        this.buffer.set(data.subarray(2, 8));
        this.filled = 6;
        this.nextSeq = 1;
        return { flowControl: true };
      }
      case 2: {
        const buf = this.buffer;
        if (buf === undefined) throw new FrameError('unexpected-reply', 'consecutive frame without a first frame');
        if ((pci & 0x0f) !== this.nextSeq) {
          this.buffer = undefined;
          throw new FrameError('unexpected-reply', `consecutive frame ${pci & 0x0f}, expected ${this.nextSeq}`);
        }
        this.nextSeq = (this.nextSeq + 1) & 0x0f;
        const part = data.subarray(1, 1 + Math.min(7, buf.length - this.filled));
        buf.set(part, this.filled);
        this.filled += part.length;
        if (this.filled < buf.length) return {};
        this.buffer = undefined;
        return { payload: buf };
      }
      default:
        throw new FrameError('unexpected-reply', `ISO-TP frame type ${pci >> 4} on 0x7EF`);
    }
  }
}

/**
 * Decode one UDS payload (`62 <PID> <value LE…>`) into state fields. Unknown PIDs and negative responses give
 * {}. Throws FrameError for another service or a reply with no value bytes.
 */
export function decodeBydUdsPayload(payload: Uint8Array): BydState {
  if (payload[0] === 0x7f) return {};
  if (payload[0] !== 0x62) throw new FrameError('unexpected-reply', `UDS service 0x${payload[0]?.toString(16)}`);
  if (payload.length < 4) throw new FrameError('bad-length', `UDS reply of ${payload.length} bytes has no value`);
  const pid = ((payload[1] as number) << 8) | (payload[2] as number);
  let raw = 0;
  for (let i = payload.length - 1; i >= 3; i--) raw = raw * 256 + (payload[i] as number);
  switch (pid) {
    case BydPid.soc:
      return { polledSoc: raw };
    case BydPid.voltage:
      return { polledVoltage: raw };
    case BydPid.current:
      return { polledCurrent: round((raw - 5000) * 0.1, 1) };
    case BydPid.chargePowerLimit:
      return { chargePowerLimit: raw * 100 };
    case BydPid.dischargePowerLimit:
      return { dischargePowerLimit: raw * 100 };
    case BydPid.cellVoltageMin:
      return { cellVoltageMin: raw / 1000 };
    case BydPid.cellVoltageMax:
      return { cellVoltageMax: raw / 1000 };
    case BydPid.cellTemperatureMin:
      return { cellTemperatureMin: raw - 40 };
    case BydPid.cellTemperatureMax:
      return { cellTemperatureMax: raw - 40 };
    case BydPid.cellTemperatureAverage:
      return { cellTemperatureAverage: raw - 40 };
    default:
      return {};
  }
}

// ---- pack side (simulator) ---------------------------------------------------------------------------------

export interface BydPolledValues {
  soc: number;
  voltage: number;
  current: number;
  /** W */
  chargePowerLimit: number;
  /** W */
  dischargePowerLimit: number;
  /** V */
  cellVoltageMin: number;
  cellVoltageMax: number;
  cellTemperatureMin: number;
  cellTemperatureMax: number;
  cellTemperatureAverage: number;
}

/** The raw value and its byte width for one PID, or undefined for a PID the simulated pack does not know. */
function rawOf(pid: number, v: BydPolledValues): [number, number] | undefined {
  switch (pid) {
    case BydPid.soc:
      return [Math.round(v.soc), 1];
    case BydPid.voltage:
      return [Math.round(v.voltage), 2];
    case BydPid.current:
      return [Math.round(v.current * 10 + 5000), 2];
    case BydPid.chargePowerLimit:
      return [Math.round(v.chargePowerLimit / 100), 2];
    case BydPid.dischargePowerLimit:
      return [Math.round(v.dischargePowerLimit / 100), 2];
    case BydPid.cellVoltageMin:
      return [Math.round(v.cellVoltageMin * 1000), 2];
    case BydPid.cellVoltageMax:
      return [Math.round(v.cellVoltageMax * 1000), 2];
    case BydPid.cellTemperatureMin:
      return [Math.round(v.cellTemperatureMin + 40), 1];
    case BydPid.cellTemperatureMax:
      return [Math.round(v.cellTemperatureMax + 40), 1];
    case BydPid.cellTemperatureAverage:
      return [Math.round(v.cellTemperatureAverage + 40), 1];
    default:
      return undefined;
  }
}

/** The pack's 0x7EF single-frame reply to a 0x7E7 request, or undefined (not a request, unknown PID). */
export function encodeBydPidReply(request: CanFrame, v: BydPolledValues): CanFrame | undefined {
  const pid = bydRequestedPid(request);
  if (pid === undefined) return undefined;
  const r = rawOf(pid, v);
  if (r === undefined) return undefined;
  const [raw, width] = r;
  const data = new Uint8Array(8);
  data.set([3 + width, 0x62, pid >> 8, pid & 0xff]);
  for (let i = 0; i < width; i++) data[4 + i] = (raw >> (8 * i)) & 0xff;
  return { id: BYD_UDS_REPLY_ID, ext: false, data };
}
