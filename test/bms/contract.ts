/**
 * The contract every BMS protocol family passes (style.md §7.9). A family's test file describes itself as a
 * BmsFamilyUnderTest built from real captures and calls describeBmsFamily(family); once several families
 * exist, each also calls describeRefusalByOtherFamilies(family, allFamilies) so that no family's probe
 * claims another family's frames (the auto-detect on a shared port relies on that).
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { FrameError, type FrameErrorCode, isFrameError } from '../../src/domain/errors.js';

/** A named frame captured from a real device (never produced by our encoders). */
export interface GoldenFrame {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** A broken frame and the FrameError code its decoder must throw. */
export interface BadFrame {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly code: FrameErrorCode;
}

/** A request our encoder builds, next to the bytes a real host sent for it. */
export interface CapturedRequest {
  readonly name: string;
  readonly encoded: Uint8Array;
  readonly captured: Uint8Array;
}

/** What a family exposes to the contract suite. */
export interface BmsFamilyUnderTest {
  /** Family id as in the registry, e.g. `jbd`. */
  readonly id: string;
  /** Every distinct real reply frame the family's fixtures hold (at least one). */
  readonly goldenFrames: readonly GoldenFrame[];
  /** Byte values that can begin a frame; the garbage the suite generates avoids them. */
  readonly startBytes: readonly number[];
  /** The family's pure frame extractor: complete frames plus the bytes to keep for later. */
  extract(buffer: Uint8Array): { frames: Uint8Array[]; rest: Uint8Array };
  /** Decode one complete frame as far as the family can (framing, checksum, payload). Throws FrameError only. */
  decode(frame: Uint8Array): unknown;
  /** Does this family accept these bytes as one of its replies? Must never throw. */
  probe(frame: Uint8Array): boolean;
  /** Named broken frames (truncated, bad checksum, wrong header …) with the exact code expected. */
  readonly badFrames: readonly BadFrame[];
  /** Request encoders against real captured requests (empty for listen-only families). */
  readonly requests: readonly CapturedRequest[];
}

/** Asserts that `fn` throws a FrameError (the class, not just the name) with exactly `code`. */
export function expectFrameError(fn: () => unknown, code: FrameErrorCode): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(FrameError);
  expect((caught as FrameError).code).toBe(code);
}

/** Fixed seed: a failure reproduces on every machine; fast-check prints the counterexample. */
const FUZZ = { seed: 0x6a62_6400, numRuns: 400 } as const;

/** Runs `fn` and reports whether it returned or threw a FrameError; anything else fails the property. */
function returnsOrThrowsFrameError(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (isFrameError(e)) return true;
    throw e;
  }
}

/** Garbage that cannot start a frame: each start byte is moved to the next byte value that is not one. */
function withoutStartBytes(bytes: Uint8Array, startBytes: readonly number[]): Uint8Array {
  return bytes.map((b) => {
    let v = b;
    while (startBytes.includes(v)) v = (v + 1) & 0xff;
    return v;
  });
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A real frame changed the way a noisy line changes it: one bit flipped, cut short, or bytes inserted. */
function mutatedGolden(goldens: readonly GoldenFrame[]): fc.Arbitrary<Uint8Array> {
  const golden = fc.constantFrom(...goldens.map((g) => g.bytes));
  const bitFlip = fc.tuple(golden, fc.nat(), fc.integer({ min: 0, max: 7 })).map(([bytes, at, bit]) => {
    const out = bytes.slice();
    const i = at % out.length;
    out[i] = (out[i] as number) ^ (1 << bit);
    return out;
  });
  const truncation = fc.tuple(golden, fc.nat()).map(([bytes, keep]) => bytes.slice(0, keep % bytes.length));
  const insertion = fc
    .tuple(golden, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }))
    .map(([bytes, at, extra]) => {
      const i = at % (bytes.length + 1);
      return concat(bytes.subarray(0, i), extra, bytes.subarray(i));
    });
  return fc.oneof(bitFlip, truncation, insertion);
}

/** The shared contract suite. Call once per family from its test file. */
export function describeBmsFamily(family: BmsFamilyUnderTest): void {
  describe(`BMS family contract: ${family.id}`, () => {
    test('the family has at least one golden frame and one bad frame to test with', () => {
      expect(family.goldenFrames.length).toBeGreaterThan(0);
      expect(family.badFrames.length).toBeGreaterThan(0);
    });

    describe('golden frames', () => {
      test.each(family.goldenFrames.map((g) => [g.name, g] as const))('%s decodes with its own family', (_, g) => {
        expect(() => family.decode(g.bytes)).not.toThrow();
        expect(family.probe(g.bytes)).toBe(true);
      });

      test.each(family.goldenFrames.map((g) => [g.name, g] as const))(
        '%s is extracted whole from a buffer holding exactly that frame',
        (_, g) => {
          const { frames, rest } = family.extract(g.bytes);
          expect(frames).toEqual([g.bytes]);
          expect(rest.length).toBe(0);
        },
      );

      test('all golden frames back to back are extracted in order', () => {
        const { frames, rest } = family.extract(concat(...family.goldenFrames.map((g) => g.bytes)));
        expect(frames).toEqual(family.goldenFrames.map((g) => g.bytes));
        expect(rest.length).toBe(0);
      });

      test.each(family.goldenFrames.map((g) => [g.name, g] as const))(
        '%s cut short by one byte is refused with a FrameError',
        (_, g) => {
          const short = g.bytes.subarray(0, g.bytes.length - 1);
          expect(() => family.decode(short)).toThrow(FrameError);
          expect(family.probe(short)).toBe(false);
        },
      );
    });

    describe('bad frames', () => {
      test.each(family.badFrames.map((b) => [b.name, b.code, b] as const))('%s throws FrameError %s', (_, code, b) => {
        expectFrameError(() => family.decode(b.bytes), code);
      });
    });

    if (family.requests.length > 0) {
      describe('request encoders', () => {
        test.each(family.requests.map((r) => [r.name, r] as const))('%s equals the bytes a real host sent', (_, r) => {
          expect(Array.from(r.encoded)).toEqual(Array.from(r.captured));
        });
      });
    }

    describe('fuzzing (seeded)', () => {
      test('random byte arrays make extract and decode return or throw FrameError, nothing else', () => {
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
            expect(returnsOrThrowsFrameError(() => family.extract(bytes))).toBe(true);
            expect(returnsOrThrowsFrameError(() => family.decode(bytes))).toBe(true);
            expect(typeof family.probe(bytes)).toBe('boolean');
          }),
          FUZZ,
        );
      });

      test('mutated golden frames make extract and decode return or throw FrameError, nothing else', () => {
        fc.assert(
          fc.property(mutatedGolden(family.goldenFrames), (bytes) => {
            expect(returnsOrThrowsFrameError(() => family.extract(bytes))).toBe(true);
            expect(returnsOrThrowsFrameError(() => family.decode(bytes))).toBe(true);
            for (const frame of family.extract(bytes).frames) {
              expect(returnsOrThrowsFrameError(() => family.decode(frame))).toBe(true);
            }
            expect(typeof family.probe(bytes)).toBe('boolean');
          }),
          FUZZ,
        );
      });

      test('a golden frame inside random garbage without start bytes is always extracted intact', () => {
        const golden = fc.constantFrom(...family.goldenFrames.map((g) => g.bytes));
        const garbage = fc.uint8Array({ maxLength: 300 }).map((b) => withoutStartBytes(b, family.startBytes));
        fc.assert(
          fc.property(garbage, golden, garbage, (before, frame, after) => {
            const { frames } = family.extract(concat(before, frame, after));
            expect(frames).toEqual([frame]);
          }),
          FUZZ,
        );
      });
    });
  });
}

/**
 * Each golden frame of `family` is refused by the probe of every other family in `allFamilies`.
 * With one family registered there is nothing to compare; the test then states so and checks that much.
 */
export function describeRefusalByOtherFamilies(
  family: BmsFamilyUnderTest,
  allFamilies: readonly BmsFamilyUnderTest[],
): void {
  const others = allFamilies.filter((f) => f.id !== family.id);
  describe(`golden frames of ${family.id} and the other families' probes`, () => {
    test(`the family list contains ${family.id} itself exactly once`, () => {
      expect(allFamilies.filter((f) => f.id === family.id)).toHaveLength(1);
    });
    const rows = others.flatMap((other) => family.goldenFrames.map((g) => [g.name, other.id, other, g] as const));
    if (rows.length > 0) {
      test.each(rows)('%s is refused by the %s probe', (_, __, other, g) => {
        expect(other.probe(g.bytes)).toBe(false);
      });
    }
  });
}

/**
 * Frames of other protocols captured on real hardware (for instance another vendor's reply on the same bus)
 * that `family` must not accept.
 */
export function describeRefusalOfForeignFrames(family: BmsFamilyUnderTest, foreign: readonly GoldenFrame[]): void {
  describe(`frames of other protocols and the ${family.id} probe`, () => {
    test.each(foreign.map((f) => [f.name, f] as const))('%s is refused', (_, f) => {
      expect(family.probe(f.bytes)).toBe(false);
      expect(family.extract(f.bytes).frames).toEqual([]);
    });
  });
}

/** xorshift32 with a fixed seed: the same "random" garbage on every run. */
export function xorshift32(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
}

/**
 * `chunks` chunks of 1–100 garbage bytes (each byte from `byte(random)`) pushed through `push`; returns the
 * largest `pending()` seen. For the "garbage keeps the framer bounded" test of every byte framer.
 */
export function pushGarbage(opts: {
  seed: number;
  chunks: number;
  byte: (random: () => number) => number;
  push: (bytes: Uint8Array) => void;
  pending: () => number;
}): number {
  const random = xorshift32(opts.seed);
  let maxPending = 0;
  for (let chunk = 0; chunk < opts.chunks; chunk++) {
    const bytes = new Uint8Array(1 + (random() % 100)).map(() => opts.byte(random));
    opts.push(bytes);
    maxPending = Math.max(maxPending, opts.pending());
  }
  return maxPending;
}
