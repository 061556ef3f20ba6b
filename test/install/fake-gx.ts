/**
 * A fake GX for the install scripts: a temporary root filesystem (ROOT=…) with Venus's /data, /service and
 * /opt/victronenergy/version, an unpacked "release" made from this checkout's install/, service/ and qml/, and a
 * PATH whose daemontools and udevadm are stubs that log every call. The scripts under test are the real ones;
 * only the commands that would act on this machine are stubbed.
 *
 *   const gx = createFakeGx();                 // node v20.20.2 on PATH
 *   gx.install(['--gui-v1']);  gx.calls();      // run install/installservice.sh; the stub calls it made
 *   gx.dispose();
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const APP_DIR = 'data/apps/dbus-batterybank';
const REAL_NODE = process.execPath;

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface FakeGxOptions {
  /** What `node --version` prints; null = no node on PATH. Default v20.20.2. */
  node?: string | null;
  /** First line of /opt/victronenergy/version. Default v3.70. */
  venus?: string;
  /** Release version in package.json. Default 0.1.0. */
  version?: string;
  /** Add a GUI v1 PageBattery.qml (stock-like) under /opt/victronenergy/gui/qml. */
  guiV1?: boolean;
}

export interface FakeGx {
  readonly dir: string;
  readonly root: string;
  /** The unpacked release the installer runs from. */
  readonly release: string;
  readonly app: string;
  run(script: string, args?: string[], env?: Record<string, string>): RunResult;
  /** install/installservice.sh of the unpacked release. */
  install(args?: string[], env?: Record<string, string>): RunResult;
  /** install/<script> of the installed copy. */
  installed(script: string, args?: string[], env?: Record<string, string>): RunResult;
  /** Replace the unpacked release with another version of it. */
  newRelease(version: string): void;
  /** Stub calls so far, one line each ("svc -u /…"), with the root prefix replaced by "". */
  calls(): string[];
  clearCalls(): void;
  /** Make svstat report this service directory (relative to the root) up for so many seconds. */
  serviceUp(serviceDir: string, seconds: number): void;
  /** Properties `udevadm info --name=<dev>` prints for a device (basename). */
  udevProperties(device: string, lines: string[]): void;
  read(path: string): string;
  exists(path: string): boolean;
  write(path: string, text: string): void;
  /** Every file, link and directory under the root with its content, link target or mode. */
  snapshot(): Map<string, string>;
  dispose(): void;
}

/** The system tools the install scripts use; Node, daemontools and udevadm are left out (stubs or absent). */
const TOOLS = [
  'sh',
  'bash',
  'sed',
  'grep',
  'awk',
  'cat',
  'cp',
  'mv',
  'rm',
  'mkdir',
  'rmdir',
  'ln',
  'chmod',
  'readlink',
  'basename',
  'dirname',
  'sort',
  'head',
  'tail',
  'find',
  'date',
  'uname',
  'sleep',
  'touch',
  'tr',
  'cut',
  'wc',
  'env',
  'true',
  'false',
  'test',
  '[',
  'printf',
  'echo',
  'ls',
  'stat',
  'mkfifo',
  'id',
];
let sharedBin: string | undefined;

/** One PATH directory (per test process) linking the tools above from the system. */
function systemBin(): string {
  if (sharedBin) return sharedBin;
  const bin = mkdtempSync(join(tmpdir(), 'fake-gx-bin-'));
  for (const tool of TOOLS) {
    const found = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => join(d, tool)).find((p) => existsSync(p));
    if (found) symlinkSync(found, join(bin, tool));
  }
  process.once('exit', () => rmSync(bin, { recursive: true, force: true }));
  sharedBin = bin;
  return bin;
}

function stubs(dir: string, node: string | null): string {
  const bin = join(dir, 'stubs');
  mkdirSync(bin);
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >>"$STUB_LOG"\n${body}`);
    chmodSync(join(bin, name), 0o755);
  };
  // `svc -d`/`-dx` takes a service down (svstat then says so).
  script(
    'svc',
    `case $1 in -d*) for d; do rm -f "$STUB_DIR/up/$(echo "$d" | sed "s|^$ROOT/||; s|/|_|g")"; done ;; esac
`,
  );
  script(
    'svstat',
    `for d; do
  f="$STUB_DIR/up/$(echo "$d" | sed "s|^$ROOT/||; s|/|_|g")"
  if [ -f "$f" ]; then echo "$d: up (pid 42) $(cat "$f") seconds"; else echo "$d: down 5 seconds, normally up"; fi
done
`,
  );
  script(
    'udevadm',
    `if [ "$1" = info ]; then
  for a; do case $a in --name=*) n=\${a#--name=} ;; esac; done
  f="$STUB_DIR/udev/$(basename "$n")"
  [ -f "$f" ] && cat "$f"
fi
exit 0
`,
  );
  if (node !== null) {
    writeFileSync(
      join(bin, 'node'),
      `#!/bin/sh\nif [ "$1" = --version ]; then echo "${node}"; exit 0; fi\nexec "${REAL_NODE}" "$@"\n`,
    );
    chmodSync(join(bin, 'node'), 0o755);
  }
  return bin;
}

const STOCK_PAGE_BATTERY = `import QtQuick 2
import com.victron.velib 1.0

MbPage {
	id: root

	property variant service
	property string bindPrefix

	title: service.description

	model: VisibleItemModel {
		MbItemValue {
			description: qsTr("State of charge")
			item.bind: service.path("/Soc")
		}

		MbSubMenu {
			description: qsTr("Device")
			subpage: Component {
				PageDeviceInfo {
					bindPrefix: service.path("")
				}
			}
		}
	}
}
`;

function makeRelease(release: string, version: string): void {
  rmSync(release, { recursive: true, force: true });
  mkdirSync(join(release, 'dist'), { recursive: true });
  // A stand-in for the driver that answers --version like it (the installer runs it before changing anything).
  writeFileSync(
    join(release, 'dist/cli.js'),
    `if (process.argv.includes('--version')) console.log(${JSON.stringify(version)});\nelse process.exit(2);\n`,
  );
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  writeFileSync(join(release, 'package.json'), `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
  for (const f of ['config.default.ini', 'README.md', 'LICENSE']) cpSync(join(REPO, f), join(release, f));
  cpSync(join(REPO, 'install'), join(release, 'install'), { recursive: true });
  cpSync(join(REPO, 'service'), join(release, 'service'), { recursive: true });
  mkdirSync(join(release, 'qml/gui-v2'), { recursive: true });
  cpSync(join(REPO, 'qml/gui-v1'), join(release, 'qml/gui-v1'), { recursive: true });
  cpSync(join(REPO, 'qml/batterybank-paths.js'), join(release, 'qml/batterybank-paths.js'));
  writeFileSync(
    join(release, 'qml/gui-v2/dbus-batterybank.json'),
    `${JSON.stringify({ name: 'dbus-batterybank', version, integrations: [], resource: '' })}\n`,
  );
  // The real production modules (x64 here), so install/selftest.cjs loads serialport and socketcan for real.
  symlinkSync(join(REPO, 'node_modules'), join(release, 'node_modules'));
}

export function createFakeGx(options: FakeGxOptions = {}): FakeGx {
  const dir = mkdtempSync(join(tmpdir(), 'fake-gx-'));
  const root = join(dir, 'root');
  const release = join(dir, 'release/dbus-batterybank');
  const stubDir = join(dir, 'stub-state');
  const log = join(dir, 'calls.log');
  for (const d of ['data/conf', 'data/log', 'service', 'opt/victronenergy', 'run']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  mkdirSync(join(root, 'var'), { recursive: true });
  symlinkSync(join(root, 'data/log'), join(root, 'var/log')); // Venus: /var/log -> /data/log
  writeFileSync(join(root, 'opt/victronenergy/version'), `${options.venus ?? 'v3.70'}\n20260801120000\n`);
  if (options.guiV1) {
    mkdirSync(join(root, 'opt/victronenergy/gui/qml'), { recursive: true });
    writeFileSync(join(root, 'opt/victronenergy/gui/qml/PageBattery.qml'), STOCK_PAGE_BATTERY);
    mkdirSync(join(root, 'service/gui'), { recursive: true });
  }
  mkdirSync(join(stubDir, 'up'), { recursive: true });
  mkdirSync(join(stubDir, 'udev'), { recursive: true });
  writeFileSync(log, '');
  makeRelease(release, options.version ?? '0.1.0');
  const PATH = `${stubs(dir, options.node === undefined ? 'v20.20.2' : options.node)}:${systemBin()}`;

  const run = (script: string, args: string[] = [], env: Record<string, string> = {}): RunResult => {
    const r = spawnSync('sh', [script, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH,
        HOME: dir,
        ROOT: root,
        UDEVADM: join(dir, 'stubs/udevadm'),
        STUB_LOG: log,
        STUB_DIR: stubDir,
        ...env,
      },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  const snapshot = (): Map<string, string> => {
    const out = new Map<string, string>();
    const walk = (d: string) => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        const rel = relative(root, p);
        const st = lstatSync(p);
        if (st.isSymbolicLink()) out.set(rel, `link -> ${readlinkSync(p)}`);
        else if (st.isDirectory()) {
          out.set(rel, `dir ${(st.mode & 0o777).toString(8)}`);
          walk(p);
        } else out.set(rel, `file ${(st.mode & 0o777).toString(8)} ${readFileSync(p, 'utf8')}`);
      }
    };
    walk(root);
    return out;
  };

  return {
    dir,
    root,
    release,
    app: join(root, APP_DIR),
    run,
    install: (args = [], env = {}) => run(join(release, 'install/installservice.sh'), args, env),
    installed: (script, args = [], env = {}) => run(join(root, APP_DIR, 'install', script), args, env),
    newRelease: (version) => makeRelease(release, version),
    calls: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => l.split(root).join('')),
    clearCalls: () => writeFileSync(log, ''),
    serviceUp: (serviceDir, seconds) =>
      writeFileSync(join(stubDir, 'up', serviceDir.replace(/^\//, '').replace(/\//g, '_')), `${seconds}\n`),
    udevProperties: (device, lines) => writeFileSync(join(stubDir, 'udev', device), `${lines.join('\n')}\n`),
    read: (path) => readFileSync(join(root, path), 'utf8'),
    exists: (path) => existsSync(join(root, path)),
    write: (path, text) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    },
    snapshot,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
