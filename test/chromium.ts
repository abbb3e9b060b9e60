/**
 * Debian's Chromium for browser tests, driven by playwright-core (no browser download: the
 * executable is /usr/bin/chromium, installed by `.ci/run`; CHROMIUM_PATH overrides). Flags as this
 * machine needs them: no sandbox (root), no GPU, and none of Chromium's own network traffic (this
 * machine's network is closed). Playwright gives every launch a fresh, temporary user-data-dir.
 * Reusable by any browser test: `const browser = await launchChromium()`.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type LaunchOptions } from 'playwright-core';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-default-apps',
];

/** Why browser tests cannot run here, or undefined when they can. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM_PATH) ? undefined : `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium; .ci/run does)`;
}

/** Starts headless Chromium; close it with `browser.close()`. */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, ...options, args: [...CHROMIUM_FLAGS, ...(options.args ?? [])] });
}
