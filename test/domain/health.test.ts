import { describe, expect, test } from 'vitest';
import { healthOf, staleThresholdMs } from '../../src/domain/health.js';

const t = { pollIntervalMs: 1000, staleAfterMs: 10_000 };

describe('healthOf', () => {
  test.each([
    { case: 'never heard from is offline', last: undefined, now: 0, want: 'offline' },
    { case: 'a reply just now is online', last: 1000, now: 1000, want: 'online' },
    { case: 'three missed polls is still online', last: 0, now: 3000, want: 'online' },
    { case: 'more than three missed polls is stale', last: 0, now: 3001, want: 'stale' },
    { case: 'just under stale_after is stale', last: 0, now: 9999, want: 'stale' },
    { case: 'stale_after without a reply is offline', last: 0, now: 10_000, want: 'offline' },
  ])('$case', ({ last, now, want }) => {
    expect(healthOf(last, now, t)).toBe(want);
  });

  test('the stale threshold never exceeds half of stale_after', () => {
    expect(staleThresholdMs({ pollIntervalMs: 5000, staleAfterMs: 10_000 })).toBe(5000);
    expect(staleThresholdMs({ pollIntervalMs: 200, staleAfterMs: 10_000 })).toBe(3000);
  });
});
