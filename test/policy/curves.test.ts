import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { curveProblem, evaluateCurve, firstZeroInput, makeCurve } from '../../src/policy/curves.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 10_000);
// A 10^6 run by hand (PROPERTY_RUNS=1000000) needs more than the default 30 s.
const TIMEOUT = Math.max(30_000, RUNS * 5);

// dbus-serialbattery's default charge cell-voltage curve, written high to low as in its config.
const chargeCv = makeCurve([3.5, 3.45, 3.425, 3.4, 3.375], [0, 0.005, 0.05, 0.25, 1]);
const chargeTemp = makeCurve([0, 2, 5, 10, 40, 45, 50, 55], [0, 0.25, 0.5, 1, 1, 0.5, 0.25, 0]);

describe('evaluateCurve', () => {
  test.each([
    { case: 'below the lowest point the end value holds', x: 3.2, linear: 1, step: 1 },
    { case: 'at a point its own fraction applies', x: 3.4, linear: 0.25, step: 0.25 },
    { case: 'half-way between 3.400 and 3.425 V', x: 3.4125, linear: 0.15, step: 0.25 },
    { case: 'just below the zero point some current flows', x: 3.49, linear: 0.001, step: 0.005 },
    { case: 'at the zero point the current stops', x: 3.5, linear: 0, step: 0 },
    { case: 'above the highest point the end value holds', x: 3.7, linear: 0, step: 0 },
  ])('charge cell-voltage curve: $case', ({ x, linear, step }) => {
    expect(evaluateCurve(chargeCv, x, 'linear')).toBeCloseTo(linear, 9);
    expect(evaluateCurve(chargeCv, x, 'step')).toBeCloseTo(step, 9);
  });

  test.each([
    { case: 'freezing stops charging', x: 0, linear: 0, step: 0 },
    { case: '1 °C is a quarter of the way to 2 °C', x: 1, linear: 0.125, step: 0.25 },
    { case: '7.5 °C is half-way between 0.5 and 1', x: 7.5, linear: 0.75, step: 1 },
    { case: 'the plateau gives full current', x: 25, linear: 1, step: 1 },
    { case: '42.5 °C is half-way down to 0.5', x: 42.5, linear: 0.75, step: 1 },
    { case: '45 °C is exactly the 0.5 point', x: 45, linear: 0.5, step: 0.5 },
    { case: '60 °C is beyond the hot end', x: 60, linear: 0, step: 0 },
  ])('charge temperature curve (both ends): $case', ({ x, linear, step }) => {
    expect(evaluateCurve(chargeTemp, x, 'linear')).toBeCloseTo(linear, 9);
    expect(evaluateCurve(chargeTemp, x, 'step')).toBeCloseTo(step, 9);
  });

  test('a non-finite input gives the lowest fraction of the curve', () => {
    expect(evaluateCurve(chargeTemp, Number.NaN, 'linear')).toBe(0);
    expect(evaluateCurve(makeCurve([70, 80, 90], [1, 0.25, 0.1]), Number.NaN, 'step')).toBe(0.1);
  });

  test('ascending and descending point lists describe the same curve', () => {
    const up = makeCurve([3.375, 3.4, 3.425, 3.45, 3.5], [1, 0.25, 0.05, 0.005, 0]);
    for (const x of [3.3, 3.39, 3.41, 3.44, 3.47, 3.6]) {
      expect(evaluateCurve(up, x, 'linear')).toBe(evaluateCurve(chargeCv, x, 'linear'));
      expect(evaluateCurve(up, x, 'step')).toBe(evaluateCurve(chargeCv, x, 'step'));
    }
  });

  test(
    'for any curve and input, both modes stay in [0, 1] and step is never below linear',
    () => {
      const curveArb = fc.uniqueArray(fc.integer({ min: -400, max: 400 }), { minLength: 2, maxLength: 8 }).chain((xs) =>
        fc
          .array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: xs.length, maxLength: xs.length })
          .map((ys) => {
            const y = [...ys];
            y[0] = 1;
            return makeCurve(
              [...xs].sort((a, b) => a - b),
              y,
            );
          }),
      );
      fc.assert(
        fc.property(curveArb, fc.double({ min: -500, max: 500, noNaN: true }), (curve, x) => {
          const lin = evaluateCurve(curve, x, 'linear');
          const step = evaluateCurve(curve, x, 'step');
          expect(lin).toBeGreaterThanOrEqual(0);
          expect(lin).toBeLessThanOrEqual(1);
          expect(step).toBeGreaterThanOrEqual(lin - 1e-12);
          expect(step).toBeLessThanOrEqual(1);
        }),
        { numRuns: RUNS },
      );
    },
    TIMEOUT,
  );
});

describe('curveProblem', () => {
  test.each([
    { case: 'lists of different lengths', x: [1, 2, 3], y: [1, 0], problem: /different lengths/ },
    { case: 'a single point', x: [1], y: [1], problem: /at least 2/ },
    {
      case: 'points that go up and down',
      x: [1, 3, 2],
      y: [1, 0.5, 0],
      problem: /strictly increasing or strictly decreasing/,
    },
    { case: 'a repeated point', x: [1, 2, 2], y: [1, 0.5, 0], problem: /strictly/ },
    { case: 'a fraction above 1', x: [1, 2], y: [1, 1.5], problem: /between 0 and 1/ },
    { case: 'no point at full current', x: [1, 2], y: [0.5, 0], problem: /fraction 1/ },
    { case: 'a NaN point', x: [1, Number.NaN], y: [1, 0], problem: /number/ },
  ])('rejects $case', ({ x, y, problem }) => {
    expect(curveProblem(x, y)).toMatch(problem);
    expect(() => makeCurve(x, y)).toThrow(problem);
  });

  test('accepts the default curves', () => {
    expect(curveProblem([3.5, 3.45, 3.425, 3.4, 3.375], [0, 0.005, 0.05, 0.25, 1])).toBeUndefined();
    expect(curveProblem([98, 95, 90, 85], [0.1, 0.2, 0.5, 1])).toBeUndefined();
  });
});

describe('firstZeroInput', () => {
  test('finds the lowest input at which the curve stops the current', () => {
    expect(firstZeroInput(chargeCv)).toBe(3.5);
    expect(firstZeroInput(chargeTemp)).toBe(0);
    expect(firstZeroInput(makeCurve([98, 85], [0.1, 1]))).toBeUndefined();
  });
});
