// Debian's Chromium driven through playwright-core (never a downloaded
// browser): found at CHROMIUM_PATH, /usr/bin/chromium or on PATH; without it
// the browser tests are skipped, saying why.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser as PwBrowser, type Page } from 'playwright-core';
import { CONSOLE_CSP } from '../../src/plugins/console.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { tokenOf, type Subject } from '../support/app.js';

export function findChromium(): string | null {
  // An explicit CHROMIUM_PATH is the only candidate (a wrong one skips, it does not fall back).
  if (process.env.CHROMIUM_PATH) return existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : null;
  for (const path of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(path)) return path;
  try {
    const found = execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
    return found || null;
  } catch {
    return null;
  }
}

const CHROMIUM = findChromium();
/** node:test `skip` value: false when the browser tests can run, else the reason. */
export const SKIP = CHROMIUM ? false : `Chromium not found${process.env.CHROMIUM_PATH ? ` at CHROMIUM_PATH=${process.env.CHROMIUM_PATH}` : ''} (apt-get install chromium): browser tests skipped`;

export const SCREENSHOTS = process.env.CONSOLE_SCREENSHOTS_DIR ?? join(PROJECT_ROOT, 'test-output', 'console');

const axeSource = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

export interface Browser {
  browser: PwBrowser;
  /** Console responses that came without the console's CSP, and CSP violations or page errors seen. */
  problems: string[];
  /** Dialogs opened by any page (an XSS payload that ran would open one). */
  dialogs: string[];
  /**
   * A page in a context of its own, like a separate person's browser: its own
   * storage and its own connections (a browser opens at most six to one server).
   */
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function launch(): Promise<Browser> {
  assert.ok(CHROMIUM, 'launch() called without Chromium');
  // Playwright gives the browser a fresh temporary profile (user-data-dir) and removes it on close.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const problems: string[] = [];
  const dialogs: string[] = [];
  const watch = (page: Page) => {
    page.on('response', (res) => {
      const url = new URL(res.url());
      if ((url.pathname === '/' || url.pathname.startsWith('/console')) && res.headers()['content-security-policy'] !== CONSOLE_CSP) {
        problems.push(`no console CSP on ${res.status()} ${url.pathname}`);
      }
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Trusted Type/i.test(msg.text())) problems.push(`CSP violation: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    if (process.env.CONSOLE_DEBUG) {
      page.on('console', (msg) => process.stderr.write(`[page ${msg.type()}] ${msg.text()}\n`));
      page.on('requestfailed', (req) => process.stderr.write(`[request failed] ${req.url()} ${req.failure()?.errorText}\n`));
      page.on('response', (res) => { if (res.status() >= 400) process.stderr.write(`[response] ${res.status()} ${res.url()}\n`); });
    }
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  };
  return {
    browser,
    problems,
    dialogs,
    async newPage() {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      watch(page);
      return page;
    },
    close: () => browser.close(),
  };
}

/** Signs in by pasting the subject's token, as a person would. */
export async function signIn(page: Page, url: string, who: Subject | string, token = tokenOf(who as Subject)): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.equal(await page.getByTestId('subject').textContent(), who);
}

/** axe-core run in the page: no serious or critical violation. */
export async function assertAccessible(page: Page, what: string): Promise<void> {
  await page.evaluate(axeSource);
  // A string, not a function: this project's TypeScript has no DOM types (the page has them).
  const violations = await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => JSON.stringify(n.target)) })))`) as Array<{ id: string; impact: string | null; help: string; targets: string[] }>;
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe on ${what}: ${JSON.stringify(bad, null, 2)}`);
}

/** A 1280x800 screenshot for a person to look at (test-output/console, not committed). */
export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** Readable on a phone: at 390 px nothing makes the page itself scroll sideways. */
export async function assertFitsPhone(page: Page, what: string): Promise<void> {
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as number;
    assert.ok(overflow <= 1, `${what} scrolls sideways by ${overflow}px at phone width`);
  } finally {
    await page.setViewportSize({ width: 1280, height: 800 });
  }
}
