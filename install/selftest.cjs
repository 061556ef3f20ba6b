#!/usr/bin/env node
// Loads every native module of the release the way the driver does and prints one JSON report; exit 0 when the
// driver can run (serialport loads), 1 when not. socketcan is optional (CAN only): reported, never fatal.
// Run on the GX: node /data/apps/dbus-batterybank/install/selftest.cjs
'use strict';
const path = require('node:path');
const app = path.resolve(__dirname, '..');
const fromApp = (id) => require(require.resolve(id, { paths: [app] }));
const report = {
  node: process.version,
  arch: process.arch,
  abi: process.versions.modules,
  armVersion: process.env.ARM_VERSION || process.config.variables.arm_version || null,
};
let ok = true;

function step(name, required, fn) {
  try {
    report[name] = fn() ?? 'ok';
  } catch (e) {
    report[name] = `FAIL: ${e.message.split('\n')[0]}`;
    if (required) ok = false;
  }
}

step('serialport', true, () => {
  fromApp('serialport');
  const dir = path.dirname(require.resolve('@serialport/bindings-cpp/package.json', { paths: [app] }));
  const file = fromApp('node-gyp-build').resolve(dir);
  return path.relative(dir, file);
});
step('socketcan', false, () => {
  const sc = fromApp('socketcan');
  const loaded = Object.keys(require.cache).find((f) => /socketcan[\\/].*can\.node$/.test(f));
  const where = loaded ? path.relative(path.dirname(require.resolve('socketcan/package.json', { paths: [app] })), loaded) : '?';
  if (typeof sc.createRawChannel !== 'function') throw new Error('no createRawChannel');
  return `loaded ${where}`;
});
step('dbus-next', true, () => {
  fromApp('dbus-next');
});
step('ini', true, () => {
  fromApp('ini');
});
report.ok = ok;
process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
process.exitCode = ok ? 0 : 1;
