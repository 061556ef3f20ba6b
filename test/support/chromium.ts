/**
 * Headless Debian chromium through playwright-core, for page tests: a fresh profile in a temp dir, no sandbox
 * (we may be root in CI), no GPU, no background traffic (component updates, sync, QUIC), loopback pages only.
 *
 *   const browser = await launchChromium();          // beforeAll
 *   const page = await browser.context.newPage();
 *   await browser.close();                           // afterAll: browser gone, profile removed
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Chromium {
  readonly context: BrowserContext;
  readonly userDataDir: string;
  close(): Promise<void>;
}

export function chromiumPath(): string | undefined {
  return CHROMIUM_PATHS.find((p) => existsSync(p));
}

export async function launchChromium(opts: { viewport?: { width: number; height: number } } = {}): Promise<Chromium> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error(`chromium not found (${CHROMIUM_PATHS.join(', ')}); apt-get install chromium`);
  // A fresh --user-data-dir per launch (playwright passes it for a persistent context).
  const userDataDir = await mkdtemp(join(tmpdir(), 'batterybank-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    chromiumSandbox: false,
    args: CHROMIUM_FLAGS,
    viewport: opts.viewport ?? { width: 1100, height: 900 },
    timeout: 30_000,
  });
  let closed = false;
  return {
    context,
    userDataDir,
    close: async () => {
      if (closed) return;
      closed = true;
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
