// The console as the service serves it, without a browser: redirects, the
// security headers on every console response, no inline script or style, the
// first-load JavaScript budget, and nothing secret in what is served.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { CONSOLE_CSP } from '../../src/plugins/console.js';
import { startTestApp, tokenOf, SUBJECTS, type Subject, type TestApp } from '../support/app.js';

let t: TestApp;

before(async () => {
  t = await startTestApp({ label: 'console_static' });
});

after(async () => {
  await t.close();
});

function assertConsoleHeaders(res: { headers: Record<string, unknown> }, what: string): void {
  const csp = String(res.headers['content-security-policy'] ?? '');
  assert.equal(csp, CONSOLE_CSP, `CSP on ${what}`);
  for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) {
    assert.ok(csp.includes(directive), `${directive} in the CSP of ${what}`);
  }
  assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), `no unsafe-* source in the CSP of ${what}`);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', what);
  assert.equal(res.headers['x-frame-options'], 'DENY', what);
  assert.equal(res.headers['referrer-policy'], 'no-referrer', what);
}

async function page() {
  const res = await t.http().get('/console/');
  assert.equal(res.status, 200, res.text);
  return res.text;
}

/** The JavaScript a first visit loads: the entry module and whatever index.html preloads. */
function firstLoadScripts(html: string): string[] {
  return [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*rel="modulepreload"[^>]*\shref)="([^"]+)"/g)].map((m) => m[1]!);
}

describe('console: serving', () => {
  test('/ redirects to /console/, /console to /console/, both with the console headers', async () => {
    const root = await t.http().get('/');
    assert.equal(root.status, 302);
    assert.equal(root.headers.location, '/console/');
    assertConsoleHeaders(root, '/');
    const bare = await t.http().get('/console');
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, '/console/');
    assertConsoleHeaders(bare, '/console');
  });

  test('the page, every asset it references and a missing file all carry the CSP and security headers', async () => {
    const res = await t.http().get('/console/');
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assertConsoleHeaders(res, '/console/');
    const assets = [...res.text.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), `script and stylesheet in ${res.text}`);
    for (const asset of assets) {
      const got = await t.http().get(asset);
      assert.equal(got.status, 200, asset);
      assertConsoleHeaders(got, asset);
      assert.equal(got.headers['cache-control'], 'public, max-age=31536000, immutable', asset);
    }
    const missing = await t.http().get('/console/assets/nope.js');
    assert.equal(missing.status, 404);
    assert.match(String(missing.headers['content-type']), /^application\/problem\+json/);
    assertConsoleHeaders(missing, 'a missing console file');
    const index = await t.http().get('/console/index.html');
    assertConsoleHeaders(index, '/console/index.html');
  });

  test('compressed assets go to browsers that accept them', async () => {
    const html = await page();
    const entry = firstLoadScripts(html)[0]!;
    const br = await t.http().get(entry).set('accept-encoding', 'br').buffer(true).parse((res, done) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(null, Buffer.concat(chunks)));
    });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.match(String(br.headers.vary), /accept-encoding/i);
    assertConsoleHeaders(br, `${entry} (br)`);
  });

  test('the console files are public, the API behind them is not', async () => {
    assert.equal((await t.http().get('/console/')).status, 200);
    assert.equal((await t.http().get('/v1/me')).status, 401);
  });
});

describe('console: safe by construction', () => {
  test('index.html has no inline script, no inline style and no event-handler attribute', async () => {
    const html = await page();
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) assert.match(tag, /\ssrc="/, `inline script: ${tag}`);
    assert.doesNotMatch(html, /<script\b[^>]*>[^<\s]/, 'no script body');
    assert.doesNotMatch(html, /<style\b/i, 'no style element');
    assert.doesNotMatch(html, /\sstyle=/i, 'no style attribute');
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no event-handler attribute');
  });

  test('the first load is under 150 KB of compressed JavaScript', async () => {
    const html = await page();
    let total = 0;
    for (const src of firstLoadScripts(html)) {
      const res = await t.http().get(src).buffer(true).parse((r, done) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => done(null, Buffer.concat(chunks)));
      });
      total += gzipSync(res.body as Buffer, { level: 9 }).length;
    }
    assert.ok(total > 1000, `measured ${total} bytes: the scripts were found`);
    assert.ok(total < 150 * 1024, `first-load JavaScript is ${total} bytes gzipped`);
  });

  test('nothing served under /console holds a token, a database URL or a configured variable', async () => {
    const html = await page();
    const bodies = [html];
    for (const src of [...html.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)].map((m) => m[1]!)) bodies.push((await t.http().get(src)).text);
    const secrets = [...(Object.keys(SUBJECTS) as Subject[]).map(tokenOf), t.control.url, t.targets.staging.url, 'postgres://', 'AUTH_TOKENS'];
    for (const body of bodies) for (const secret of secrets) assert.ok(!body.includes(secret), `"${secret}" in a console file`);
  });
});
