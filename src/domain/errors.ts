/** One error vocabulary for frames: decoders throw FrameError, drivers catch it and decide. */
export type FrameErrorCode =
  | 'truncated'
  | 'bad-checksum'
  | 'bad-header'
  | 'bad-footer'
  | 'bad-length'
  | 'unexpected-reply'
  | 'bms-error'
  | 'invalid-value';

export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export function isFrameError(e: unknown): e is FrameError {
  return e instanceof FrameError;
}

/** A request got no (valid) reply in time. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** The link is closed, vanished or failed a write. */
export class LinkError extends Error {
  override readonly name = 'LinkError';
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
