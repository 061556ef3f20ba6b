import { FrameError } from '../domain/errors.js';

/** Bounds-checked big/little-endian reads over a Uint8Array; a short read throws FrameError('truncated'). */
export class ByteReader {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get length(): number {
    return this.bytes.length;
  }
  private check(offset: number, size: number): void {
    if (offset < 0 || offset + size > this.bytes.length) {
      throw new FrameError('truncated', `need ${size} byte(s) at offset ${offset}, have ${this.bytes.length}`);
    }
  }
  u8(offset: number): number {
    this.check(offset, 1);
    return this.view.getUint8(offset);
  }
  u16be(offset: number): number {
    this.check(offset, 2);
    return this.view.getUint16(offset, false);
  }
  s16be(offset: number): number {
    this.check(offset, 2);
    return this.view.getInt16(offset, false);
  }
  u16le(offset: number): number {
    this.check(offset, 2);
    return this.view.getUint16(offset, true);
  }
  s16le(offset: number): number {
    this.check(offset, 2);
    return this.view.getInt16(offset, true);
  }
  u32be(offset: number): number {
    this.check(offset, 4);
    return this.view.getUint32(offset, false);
  }
  s32be(offset: number): number {
    this.check(offset, 4);
    return this.view.getInt32(offset, false);
  }
  u32le(offset: number): number {
    this.check(offset, 4);
    return this.view.getUint32(offset, true);
  }
  s32le(offset: number): number {
    this.check(offset, 4);
    return this.view.getInt32(offset, true);
  }
  slice(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  /** ASCII text, stopping at the first NUL, trimmed. */
  ascii(offset: number, length: number): string {
    const b = this.slice(offset, length);
    let s = '';
    for (const c of b) {
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s.trim();
  }
}
