// Usage: node scripts/release/build-gui-plugin.mjs [<out.json>]   (default: build/gui-v2/dbus-batterybank.json)
//
// Builds the gui-v2 plugin (Venus OS >= v3.70, gui-v2 >= v1.2.33) from qml/gui-v2/plugin.json: the pages and
// files it lists go into one Qt resource (`rcc --binary`, zlib, under qrc:/<name>/), which is embedded base64 in
// the JSON gui-v2 loads from /data/apps/enabled/<app>/gui-v2/. Each page is a device-list entry on the devices
// whose /ProductId is the plugin's productId. The output is reproducible: the same sources give the same bytes
// (file times are pinned, names sorted, no zstd).
//
// Needs Qt's rcc: /usr/lib/qt6/libexec/rcc (Debian qt6-base-dev-tools), or RCC=<path>.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const srcDir = path.join(repo, 'qml/gui-v2');
const spec = JSON.parse(fs.readFileSync(path.join(srcDir, 'plugin.json'), 'utf8'));
const version = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version;
const out = path.resolve(process.argv[2] ?? path.join(repo, 'build/gui-v2', `${spec.name}.json`));
const rcc = process.env.RCC ?? '/usr/lib/qt6/libexec/rcc';
if (!fs.existsSync(rcc)) {
  console.error(`build-gui-plugin: no rcc at ${rcc}; apt-get install qt6-base-dev-tools (or set RCC)`);
  process.exit(1);
}

const inputs = [...spec.pages.map((p) => p.qml), ...spec.files].map((f) => path.join(srcDir, f));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gui-plugin-'));
try {
  const pinned = new Date(0);
  const names = [];
  for (const f of inputs) {
    const name = path.basename(f);
    fs.copyFileSync(f, path.join(work, name));
    fs.utimesSync(path.join(work, name), pinned, pinned);
    names.push(name);
  }
  names.sort();
  const qrc = `<RCC>\n<qresource prefix="/${spec.name}">\n${names.map((n) => `<file>${n}</file>\n`).join('')}</qresource>\n</RCC>\n`;
  fs.writeFileSync(path.join(work, 'plugin.qrc'), qrc);
  execFileSync(rcc, ['--binary', '--compress-algo', 'zlib', '-o', 'plugin.rcc', 'plugin.qrc'], {
    cwd: work,
    env: { ...process.env, QT_RCC_SOURCE_DATE_OVERRIDE: '0', SOURCE_DATE_EPOCH: '0' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const resource = fs.readFileSync(path.join(work, 'plugin.rcc'));
  const plugin = {
    name: spec.name,
    version,
    minRequiredVersion: spec.minRequiredVersion,
    maxRequiredVersion: '',
    translations: [],
    integrations: spec.pages.map((p) => ({
      type: 2, // device-list page
      productId: spec.productId,
      url: `qrc:/${spec.name}/${p.qml}`,
      title: p.title,
    })),
    resource: resource.toString('base64'),
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(plugin, null, 2)}\n`);
  console.log(`gui-v2 plugin: ${path.relative(process.cwd(), out)} (${names.length} files, rcc ${resource.length} bytes)`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
