/**
 * A link carries bytes (serial, BLE) or frames (CAN) and knows nothing about any BMS.
 *
 *   link (bytes) ──► family framer ──► decoder ──► snapshot
 *
 * Implementations never throw out of their event callbacks; errors surface as a `close` with a reason.
 */
export interface Link<T> {
  /** Human description for logs and /Mgmt/Connection, e.g. "Serial ttyUSB0". */
  readonly description: string;
  readonly isOpen: boolean;
  /** Open the underlying device. Rejects with a LinkError when it cannot be opened. */
  open(): Promise<void>;
  /** Send one message. Rejects with a LinkError when the link is not open or the write fails. */
  send(message: T): Promise<void>;
  /** Close; idempotent; never rejects. */
  close(): Promise<void>;
  /** Register the receiver of incoming messages (one receiver per link). */
  onData(listener: (message: T) => void): void;
  /** Called once each time the link goes from open to closed for any reason other than close(). */
  onClose(listener: (reason: Error) => void): void;
}

export type ByteLink = Link<Uint8Array>;
