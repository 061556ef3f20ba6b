import { defineConfig } from 'vitest/config';

/**
 * The SocketCAN tests, run inside one User-Mode-Linux boot by test/can/uml.test.ts (vcan0 and vcan1 are up there;
 * the host has no AF_CAN). One forked worker, files in sequence: node starts slowly under UML and the files share vcan0.
 */
export default defineConfig({
  test: {
    include: ['test/can/**/*.guest.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // forks, not threads: the native socketcan addon (nan) runs its callbacks on the main thread's isolate only.
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
  },
});
