/**
 * The `decode` hook for CAN families: candump / cansend / log text in, one decoded line per frame out
 * (for `batterybank decode --protocol pylon-can '351#1C0200000000E801'` and pasting captures into issues).
 */
import { errorMessage } from '../../domain/errors.js';
import { type CanFrame, formatCanFrame, parseCanLine } from '../../links/can/can-frame.js';
import { decodeBydFrame, isBydId } from '../byd-atto3/protocol.js';
import { decodeDeyeFrame, isDeyeExtraId } from '../deye-can/protocol.js';
import { decodePylonCanFrame, isPylonCanId } from './protocol.js';

export type CanFamilyId = 'pylon-can' | 'deye-can' | 'byd-atto3';
export const CAN_FAMILIES: readonly CanFamilyId[] = ['pylon-can', 'deye-can', 'byd-atto3'];

export interface DecodedCanLine {
  /** The frame in cansend notation, or the input line when it was no frame. */
  frame: string;
  /** What it means; undefined when `error` is set or the family does not use this id. */
  values?: unknown;
  error?: string;
}

function decodeOne(frame: CanFrame, family: CanFamilyId): unknown {
  if (family === 'byd-atto3') return isBydId(frame.id) ? decodeBydFrame(frame) : undefined;
  if (isPylonCanId(frame.id)) return decodePylonCanFrame(frame);
  if (family === 'deye-can' && isDeyeExtraId(frame.id)) return decodeDeyeFrame(frame);
  return undefined;
}

/** Decode every frame of `text` as `family` (blank and `#` lines skipped). Never throws. */
export function decodeCanText(text: string, family: CanFamilyId): DecodedCanLine[] {
  const out: DecodedCanLine[] = [];
  for (const line of text.split(/\r?\n/)) {
    let frame: CanFrame | undefined;
    try {
      frame = parseCanLine(line);
    } catch (e) {
      out.push({ frame: line.trim(), error: errorMessage(e) });
      continue;
    }
    if (frame === undefined) continue;
    try {
      const values = decodeOne(frame, family);
      out.push(values === undefined ? { frame: formatCanFrame(frame) } : { frame: formatCanFrame(frame), values });
    } catch (e) {
      out.push({ frame: formatCanFrame(frame), error: errorMessage(e) });
    }
  }
  return out;
}
