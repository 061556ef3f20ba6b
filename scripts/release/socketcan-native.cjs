'use strict';
// dbus-batterybank release: socketcan's addon loader. The release ships socketcan 4.0.7 without a compiler on the
// GX, cross-built per CPU into node_modules/socketcan/prebuilds/<platform>-<arch>/{can,can_signals}.node
// (linux-arm = armv7 hard-float, linux-arm64, linux-x64; Node 20 ABI 115). scripts/release/package.sh copies
// this file to node_modules/socketcan/dist/batterybank-native.cjs and points socketcan's two
// require("../build/Release/<name>.node") calls at it, so `require('socketcan')` / `await import('socketcan')`
// loads the addon for this CPU. A build/Release/<name>.node (a local `npm install`) is used when present.
const fs = require('node:fs');
const path = require('node:path');

module.exports = function loadSocketcanAddon(name) {
  const pkg = path.join(__dirname, '..');
  const candidates = [
    path.join(pkg, 'build', 'Release', `${name}.node`),
    path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, `${name}.node`),
  ];
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) {
    throw new Error(`socketcan: no ${name}.node for ${process.platform}-${process.arch} (looked for ${candidates.join(', ')})`);
  }
  return require(found);
};
