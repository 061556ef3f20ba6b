/**
 * The SocketCAN tests (test/can/*.guest.ts) need AF_CAN, which the host does not have: this test boots one
 * User-Mode-Linux guest (test/support/uml-run.sh; vcan0 and vcan1 up) that runs them all with vitest.can.config.ts,
 * and asserts on vitest's JSON report. It fails — never skips — when the guest cannot boot (CI installs
 * user-mode-linux, can-utils, iproute2 and kmod).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface JsonReport {
  success: boolean;
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  testResults: { assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
}

// The boot takes ~10 s; socketcan.guest.ts ~12 s and inverter.guest.ts ~30 s of that run (measured: ~55 s in all).
test('SocketCAN tests inside one User-Mode-Linux boot', { timeout: 175_000 }, async () => {
  const dir = `${ROOT}node_modules/.cache/batterybank-can`;
  mkdirSync(dir, { recursive: true });
  const report = `node_modules/.cache/batterybank-can/report-${process.pid}.json`;
  rmSync(`${ROOT}${report}`, { force: true });
  const command = `node node_modules/vitest/vitest.mjs run --config vitest.can.config.ts --reporter=json --outputFile=${report}`;
  let output = '';
  const status = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('bash', ['test/support/uml-run.sh', command], {
      cwd: ROOT,
      env: { ...process.env, UML_TIMEOUT: '160' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (status === 125 || status === 126)
    throw new Error(`the UML guest did not boot or set up CAN (status ${status}):\n${output}`);
  let parsed: JsonReport;
  try {
    parsed = JSON.parse(readFileSync(`${ROOT}${report}`, 'utf8')) as JsonReport;
  } catch (e) {
    throw new Error(`no report from the guest (status ${status}): ${String(e)}\n${output}`);
  } finally {
    rmSync(`${ROOT}${report}`, { force: true });
  }
  const results = parsed.testResults.flatMap((f) => f.assertionResults);
  const failed = results.filter((r) => r.status !== 'passed');
  // The summary line CI reads for the UML step.
  console.log(`SocketCAN in UML: ${parsed.numPassedTests} passed, ${parsed.numFailedTests} failed`);
  expect(failed.map((r) => `${r.fullName}: ${r.failureMessages.join('\n')}`)).toEqual([]);
  expect(status).toBe(0);
  expect(results.map((r) => r.fullName)).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/node → node/),
      expect.stringMatching(/cansend → our link/),
      expect.stringMatching(/our link → candump/),
      expect.stringMatching(/link down/),
      expect.stringMatching(/burst/),
      expect.stringMatching(/Pylon/),
      expect.stringMatching(/Deye rack/),
      expect.stringMatching(/Pylon LV: the six frames every second/),
      expect.stringMatching(/BYD HVS: silent until the inverter asks/),
      expect.stringMatching(/driver process → Pylon frames on vcan1/),
    ]),
  );
  expect(parsed.numPassedTests).toBe(10);
});
