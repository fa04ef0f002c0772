// The console in a real browser (Debian's Chromium via playwright-core)
// against the service on a real port and real PostgreSQL: sign-in per role, a
// run created, approved by two people, applied by an operator who types the
// environment's name, watched live to its verification report, rolled back
// with a second sre's approval; a failing finding acknowledged by an sre; the
// environments and backfills pages. Every
// step checks what the API says afterwards, not only the page; axe-core runs
// on each page; every console response carries the CSP.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../database/paths.js';
import { bearer, startTestApp, SUBJECTS, type Subject, type TestApp } from '../support/app.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, migrationSource, writeMigrations } from '../support/migrations.js';
import { createItems, definitionsDir, itemsDefinition, type DefinitionsDir } from '../backfills/helpers.js';
import { applyRepoMigrations, REPO_MIGRATIONS } from '../runs/helpers.js';
import { assertAccessible, assertFitsPhone, launch, SCREENSHOTS, signIn, SKIP, screenshot, type Browser } from './browser.js';

const XSS = '<img src=x onerror=alert(1)>';
const DAY = 86_400_000;

let t: TestApp;
let url: string;
let browser: Browser;
let dir: string;
let backups: string;
let defs: DefinitionsDir;
let runId: string;
const pages = new Map<string, Page>();

const api = {
  get: (path: string, who: Subject = 'vic') => t.http().get(path).set('authorization', bearer(who)),
  post: (path: string, who: Subject, body: object = {}) => t.http().post(path).set('authorization', bearer(who)).send(body),
  run: async () => (await api.get(`/v1/runs/${runId}`)).body as { status: string; description: string; requestedBy: string; approvals: Array<{ subject: string; role: string; decision: string; comment: string; current: boolean }> },
};

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One tab per person, signed in once (sessionStorage is per tab). */
async function as(who: Subject): Promise<Page> {
  let page = pages.get(who);
  if (!page) {
    page = await browser.newPage();
    await signIn(page, url, who);
    pages.set(who, page);
  }
  await page.bringToFront();
  return page;
}

async function openRun(page: Page): Promise<void> {
  await page.goto(`${url}/console/#/runs/${runId}`);
  await page.locator('#run-title').waitFor();
}

const statusText = (page: Page) => page.getByTestId('run-status').textContent();

/** A browser step: skipped, and counted and reported as skipped with the reason, where there is no Chromium. */
const step = (name: string, fn: () => Promise<void> | void) => test(name, { skip: SKIP }, fn);

describe('console in Chromium', () => {
  before(async () => {
    if (SKIP) return;
    dir = await mkdtemp(join(tmpdir(), 'sf-console-migrations-'));
    backups = await mkdtemp(join(tmpdir(), 'sf-console-backups-'));
    defs = await definitionsDir();
    await defs.write('items-power', itemsDefinition());
    const now = Date.now();
    const config = {
      environments: {
        staging: {
          databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: resolve(PROJECT_ROOT, 'database/migrations'), backfillsDir: defs.dir,
          windows: [{ cron: '0 2 * * *', durationMinutes: 180, timezone: 'UTC' }],
          freezes: [{ from: new Date(now + 2 * DAY).toISOString(), to: new Date(now + 3 * DAY).toISOString(), reason: 'game launch' }],
        },
        production: {
          databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: dir, approvals: { required: ['engineering', 'sre'] }, windows: [],
          lockTimeoutMs: 500, lockRetries: { attempts: 20, baseDelayMs: 50, maxDelayMs: 200 },
          backup: { method: 'pg_dump', dir: backups }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 },
          // A short post-apply watch, long enough to be seen live.
          verify: { smokeEtl: false, watchMinutes: 0.05 },
        },
      },
    };
    t = await startTestApp({ label: 'console', migrationConfigSource: `export default ${JSON.stringify(config)};`, env: { BACKFILLS: 'off', EVENTS_POLL_MS: '100' } });
    await applyRepoMigrations(t.targets.staging, REPO_MIGRATIONS.length);
    await createItems(t.targets.staging, 500);
    await writeMigrations(dir, FIXTURE_BASE);
    await applyMigrations(t.targets.production.url, dir, 2);
    await writeMigrations(dir, { ...FIXTURE_BASE, '2000_add-note': FIXTURES.addNote, '3000_add-score': FIXTURES.addScore });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as import('node:net').AddressInfo).port}`;
    browser = await launch();
    process.stderr.write(`console screenshots: ${SCREENSHOTS}\n`);
  });

  after(async () => {
    await browser?.close();
    await t?.close();
    for (const d of [dir, backups]) if (d) await rm(d, { recursive: true, force: true });
    await defs?.remove();
  });

  step('sign-in: a wrong token and a service that does not answer get clear messages; the token lives in sessionStorage only', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}/console/`);
    await assertAccessible(page, 'the sign-in page');
    await screenshot(page, '01-sign-in');
    await page.getByLabel('Bearer token').fill('not-a-token-of-this-service');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not accepted (401)' }).waitFor();

    await page.route('**/v1/me', (route) => route.abort('connectionrefused'));
    await page.getByLabel('Bearer token').fill('anything');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'cannot be reached' }).waitFor();
    await page.unroute('**/v1/me');
    await assertFitsPhone(page, 'the sign-in page');

    // By keyboard alone: Tab reaches the token field, Enter signs in.
    await page.getByLabel('Bearer token').fill('');
    await page.locator('body').click();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'token');
    await page.keyboard.type('test-token-vic-0123456789abcdef');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const storage = await page.evaluate('({ session: Object.values(sessionStorage), local: Object.keys(localStorage).length, href: location.href, html: document.documentElement.outerHTML })') as { session: string[]; local: number; href: string; html: string };
    assert.deepEqual(storage.session, ['test-token-vic-0123456789abcdef']);
    assert.equal(storage.local, 0, 'nothing in localStorage');
    assert.ok(!storage.href.includes('test-token'), 'the token is not in the URL');
    assert.ok(!storage.html.includes('test-token'), 'the token is not in the page');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Bearer token').waitFor();
    assert.deepEqual(await page.evaluate('Object.keys(sessionStorage)'), [], 'sign-out forgets the token');
    await page.context().close();
  });

  step('each role signs in and is offered what its roles allow, as GET /v1/me says', async () => {
    for (const who of ['vic', 'alice', 'bob', 'carol', 'olga', 'root'] as const) {
      const page = await as(who);
      const me = (await api.get('/v1/me', who)).body as { subject: string; roles: string[]; can: { createRun: boolean } };
      assert.equal(me.subject, who);
      assert.deepEqual(me.roles, [...SUBJECTS[who]]);
      assert.equal(await page.locator('.roles').textContent(), `(${me.roles.join(', ')})`);
      await page.locator('#runs').waitFor();
      // The environments (which the New run form lists) have arrived once the filter offers them.
      await page.locator('#filter-env option').nth(2).waitFor({ state: 'attached' });
      assert.equal(await page.getByRole('button', { name: 'Create run' }).count(), me.can.createRun ? 1 : 0, `${who}: New run form`);
    }
    await assertAccessible(pages.get('alice')!, 'the runs page');
  });

  step('a requester creates a run in the page; its description is shown as text', async () => {
    const page = await as('rita');
    const form = page.locator('#new-run');
    await form.getByLabel('Environment').selectOption('production');
    await form.getByLabel('Description').fill(XSS);
    await form.getByLabel('Ticket (optional)').fill('OPS-19');
    await form.getByRole('button', { name: 'Create run' }).click();
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    runId = page.url().split('/').pop()!;
    const run = await api.run();
    assert.equal(run.description, XSS, 'stored exactly as typed');
    assert.equal(run.requestedBy, 'rita');
    assert.equal(await page.locator('#run-title').textContent(), XSS, 'shown as text');
    assert.equal(await page.locator('#run-title img').count(), 0, 'no element was made from it');
    // The page follows preflight live, without a reload.
    await page.evaluate('window.marker = 1');
    await until('awaiting approval in the page', async () => (await statusText(page)) === 'awaiting approval', 60_000);
    assert.equal((await api.run()).status, 'awaiting_approval');
    assert.equal(await page.evaluate('window.marker'), 1, 'updated live, not reloaded');
    await page.locator('#preflight').waitFor();
    assert.ok(await page.locator('#migrations pre.code').filter({ hasText: 'ALTER TABLE accounts ADD COLUMN note text' }).count() > 0, 'the SQL as rehearsed');
    assert.deepEqual(browser.dialogs, [], 'the payload never ran');
    await assertAccessible(page, 'a run awaiting approval');
    await screenshot(page, '03-run-awaiting-approval');
  });

  step('the requester gets no approve button, and the API refuses the requester\'s approval', async () => {
    const page = await as('rita');
    await page.locator('#approvals').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0);
    await page.getByText('You requested this run, so you cannot approve it.').waitFor();
    const refused = await api.post(`/v1/runs/${runId}/approvals`, 'rita', { role: 'engineering', decision: 'approve' });
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.body.detail, /requested run .* cannot approve/);
    assert.deepEqual((await api.run()).approvals, []);
  });

  step('an engineering user and a different sre approve in the page', async () => {
    const bob = await as('bob');
    await bob.goto(`${url}/console/#/runs`);
    await bob.locator('#waiting a').filter({ hasText: XSS }).click();
    await bob.locator('#approvals').waitFor();
    await bob.getByLabel('Comment (optional)').fill('schema change reviewed');
    await bob.getByRole('button', { name: 'Approve', exact: true }).click();
    await bob.getByText('Approved as engineering.').waitFor();
    let run = await api.run();
    assert.deepEqual(run.approvals.map((a) => [a.subject, a.role, a.decision, a.comment, a.current]), [['bob', 'engineering', 'approve', 'schema change reviewed', true]]);
    assert.equal(run.status, 'awaiting_approval');
    assert.equal(await bob.getByRole('button', { name: 'Approve', exact: true }).count(), 0, 'no second decision offered');

    const carol = await as('carol');
    await openRun(carol);
    await carol.getByRole('button', { name: 'Approve', exact: true }).click();
    await carol.getByText('Approved as sre.').waitFor();
    run = await api.run();
    assert.deepEqual(run.approvals.map((a) => [a.subject, a.role]), [['bob', 'engineering'], ['carol', 'sre']]);
    assert.ok(['approved', 'scheduled'].includes(run.status), run.status);
  });

  step('only the roles that may apply are offered the apply', async () => {
    for (const who of ['vic', 'alice', 'bob', 'carol', 'olga', 'root'] as const) {
      const page = await as(who);
      await openRun(page);
      await page.locator('#approvals').waitFor();
      const can = ((await api.get('/v1/me', who)).body as { can: { apply: boolean } }).can;
      assert.equal(await page.getByRole('button', { name: 'Apply production now' }).count(), can.apply ? 1 : 0, `${who}: apply offered`);
    }
  });

  step('an operator confirms the apply by typing the environment name, sees it live, then the verification report', async () => {
    const page = await as('olga');
    await openRun(page);
    const apply = page.getByRole('button', { name: 'Apply production now' });
    const confirm = page.getByLabel('Type the environment name (production) to confirm');
    assert.equal(await apply.isDisabled(), true, 'disabled until the name is typed');
    await confirm.fill('prod');
    assert.equal(await apply.isDisabled(), true, 'a partial name is not a confirmation');
    await confirm.fill('production');
    assert.equal(await apply.isDisabled(), false);
    await assertAccessible(page, 'the apply confirmation');
    await page.evaluate('window.marker = 2');
    await apply.click();
    await page.getByTestId('live-progress').waitFor({ timeout: 20_000 });
    const progress = await page.getByTestId('live-progress').textContent();
    assert.match(progress ?? '', /Apply started/);
    await screenshot(page, '04-run-applying');
    await page.getByTestId('live-progress').getByText('✓ Migrations applied (2 of 2)').waitFor({ timeout: 30_000 });
    await until('succeeded in the page', async () => (await statusText(page)) === 'succeeded', 60_000);
    await page.getByTestId('verification').waitFor();
    // The followed apply stays on the page with its outcome instead of vanishing.
    await page.getByRole('heading', { name: 'Apply finished: succeeded' }).waitFor({ timeout: 10_000 });
    assert.match(await page.getByTestId('live-progress').textContent() ?? '', /✓ Migrations applied \(2 of 2\)/);
    assert.equal(await page.evaluate('window.marker'), 2, 'followed live, not reloaded');
    const run = await api.run();
    assert.equal(run.status, 'succeeded');
    const report = (await api.get(`/v1/runs/${runId}/report`)).body.apply.report as { outcome: string; actor: string; verification: Array<{ id: string }> };
    assert.equal(report.outcome, 'succeeded');
    assert.equal(report.actor, 'olga');
    const shown = await page.getByTestId('verification').locator('tbody tr td:first-child').allTextContents();
    assert.deepEqual(shown, report.verification.map((c) => c.id), 'the page shows the checks the API reports');
    const started = ((await api.get(`/v1/runs/${runId}/events`)).body as Array<{ type: string; actor: string; details: { reason?: string | null } }>).find((e) => e.type === 'apply.started');
    assert.equal(started?.actor, 'olga');
    await page.locator('#log pre').waitFor();
    await assertAccessible(page, 'a succeeded run');
    await assertFitsPhone(page, 'the run page');
    await screenshot(page, '05-run-succeeded');
  });

  step('an operator asks for a rollback and a second sre approves it in the page', async () => {
    const olga = await as('olga');
    await olga.locator('#rollback').waitFor();
    await olga.getByLabel(/Down: revert/).check();
    await olga.getByLabel('Type the environment name (production) to confirm').fill('production');
    await olga.getByLabel('Reason', { exact: true }).fill('verification looked off in the dashboard');
    await olga.getByRole('button', { name: 'Ask for the rollback' }).click();
    await olga.getByText('another sre must approve it', { exact: false }).first().waitFor();
    let requests = (await api.get(`/v1/runs/${runId}/rollback`)).body as Array<{ status: string; requestedBy: string; mode: string }>;
    assert.deepEqual(requests.map((r) => [r.mode, r.status, r.requestedBy]), [['down', 'awaiting_approval', 'olga']]);

    const cora = await as('cora');
    await cora.goto(`${url}/console/#/runs`);
    await cora.locator('#waiting a').filter({ hasText: XSS }).click();
    await cora.locator('#rollback').waitFor();
    // The approver sees the plan stored with the request, and approves that plan's digest.
    await cora.getByRole('heading', { name: 'Rollback plan (down)' }).waitFor();
    const asked = requests as unknown as Array<{ planDigest: string }>;
    assert.ok(await cora.getByText(asked[0]!.planDigest.slice(0, 12)).count(), 'the page shows the digest of the plan being approved');
    await assertAccessible(cora, 'a rollback waiting for approval');
    await cora.getByRole('button', { name: 'Approve the rollback' }).click();
    await until('rolled back', async () => (await api.run()).status === 'rolled_back', 60_000);
    requests = (await api.get(`/v1/runs/${runId}/rollback`)).body;
    assert.equal(requests[0]!.status, 'succeeded');
    await until('rolled back in the page', async () => (await statusText(cora)) === 'rolled back', 30_000);
    await cora.locator('#rollback-report').waitFor();
    const columns = await t.targets.production.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts' ORDER BY ordinal_position`);
    assert.deepEqual(columns.rows.map((r) => r.column_name), ['id', 'email'], 'the target is back where it was');
    await screenshot(cora, '06-run-rolled-back');
  });

  step('runs page: filters, newest first, and the run in its row', async () => {
    const page = await as('vic');
    await page.goto(`${url}/console/#/runs?environment=production`);
    await page.locator('#runs tbody tr').first().waitFor();
    const first = page.locator('#runs tbody tr').first();
    assert.equal(await first.locator('a').textContent(), XSS);
    assert.equal(await first.locator('.badge').textContent(), 'rolled back');
    await page.getByLabel('Status').selectOption('succeeded');
    await page.getByText('No runs match.').waitFor();
    await assertAccessible(page, 'the filtered runs page');
    await page.goto(`${url}/console/#/runs`);
    await page.locator('#runs tbody tr').first().waitFor();
    await assertFitsPhone(page, 'the runs page');
    await screenshot(page, '02-runs');
  });

  step('runs page: pages of 20, older and newer, in the order the API gives', async () => {
    // Finished runs of an earlier era, written as the service would have left them.
    await t.control.query(`INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals)
                           SELECT 'staging', 'cancelled', 'old run ' || g, 'alice', 'd', '{any}' FROM generate_series(1, 25) g`);
    const page = await as('vic');
    await page.goto(`${url}/console/#/runs`);
    // Rows written behind the service's back come with no event to refresh the page on.
    await page.reload();
    await page.locator('#runs tbody tr').nth(19).waitFor();
    const first = await page.locator('#runs tbody td:nth-child(4) a').allTextContents();
    const api1 = (await api.get('/v1/runs?limit=20')).body as { items: Array<{ description: string }>; nextCursor: string };
    assert.deepEqual(first, api1.items.map((r) => r.description));
    assert.equal(first[0], 'old run 25', 'newest first');
    await page.getByRole('link', { name: 'Older →' }).click();
    await page.locator('#runs tbody td:nth-child(4) a').filter({ hasText: XSS }).waitFor();
    const second = await page.locator('#runs tbody td:nth-child(4) a').allTextContents();
    const api2 = (await api.get(`/v1/runs?limit=20&cursor=${api1.nextCursor}`)).body as { items: Array<{ description: string }>; nextCursor: string | null };
    assert.deepEqual(second, api2.items.map((r) => r.description));
    assert.equal(api2.nextCursor, null);
    assert.equal(await page.getByRole('link', { name: 'Older →' }).count(), 0, 'no older page');
    await page.getByRole('link', { name: '← Newer' }).click();
    await page.locator('#runs tbody td:nth-child(4) a').first().filter({ hasText: 'old run 25' }).waitFor();
  });

  step('environments page: windows with the freeze cut out, pending migrations, ETL pause and resume', async () => {
    const page = await as('olga');
    await page.goto(`${url}/console/#/environments`);
    const staging = page.locator('#env-staging');
    await staging.locator('svg.strip-svg').waitFor();
    assert.ok(await staging.locator('rect.strip-freeze').count() >= 1, 'the freeze is drawn');
    assert.ok(await staging.locator('rect.strip-open').count() >= 4, 'daily windows are drawn');
    await staging.getByText('Freeze', { exact: false }).filter({ hasText: 'game launch' }).waitFor();
    await screenshot(page, '07-environments');
    const windows = (await api.get('/v1/environments/staging/windows?count=30')).body as Array<{ start: string; end: string }>;
    const freeze = { from: Date.now() + 2 * DAY, to: Date.now() + 3 * DAY };
    assert.ok(windows.every((w) => Date.parse(w.end) <= freeze.from + 60_000 || Date.parse(w.start) >= freeze.to - 60_000), 'the API cut the freeze out of the windows');
    const production = page.locator('#env-production');
    await production.getByText('2000_add-note').waitFor();
    await staging.getByText('Workers', { exact: true }).waitFor();
    await page.getByLabel('Reason to pause the staging ETL').fill('console test');
    await page.getByRole('button', { name: 'Pause ETL workers' }).click();
    await page.getByText('ETL workers paused.').waitFor();
    assert.equal((await api.get('/v1/etl/health?environment=staging')).body.paused, true);
    await page.getByLabel('Reason to resume the staging ETL').fill('done');
    await page.getByRole('button', { name: 'Resume ETL workers' }).click();
    await page.getByText('ETL workers resumed.').waitFor();
    assert.equal((await api.get('/v1/etl/health?environment=staging')).body.paused, false);
    await assertAccessible(page, 'the environments page');
    await assertFitsPhone(page, 'the environments page');
  });

  step('backfills page: the job with its progress; an operator pauses, resumes and cancels it', async () => {
    const started = await api.post('/v1/backfills', 'olga', { environment: 'staging', name: 'items-power', batchSize: 100 });
    assert.equal(started.status, 202, started.text);
    const jobId = started.body.id as string;
    const page = await as('olga');
    await page.goto(`${url}/console/#/backfills`);
    const row = page.locator('#jobs tbody tr').filter({ hasText: 'items-power' });
    await row.waitFor();
    await row.locator('progress').waitFor();
    await row.getByText('Failed rows and controls').click();
    await row.getByText('No failed rows.').waitFor();
    await assertAccessible(page, 'the backfills page');
    await screenshot(page, '08-backfills');
    await row.getByRole('button', { name: 'Pause' }).click();
    await until('paused', async () => (await api.get(`/v1/backfills/${jobId}`)).body.status === 'paused');
    await row.getByRole('button', { name: 'Resume' }).waitFor();
    await row.getByRole('button', { name: 'Resume' }).click();
    await until('pending again', async () => (await api.get(`/v1/backfills/${jobId}`)).body.status === 'pending');
    await row.getByRole('button', { name: 'Cancel job' }).click();
    await until('cancelled', async () => (await api.get(`/v1/backfills/${jobId}`)).body.status === 'cancelled');
    await row.locator('.badge').filter({ hasText: 'cancelled' }).waitFor();
    const viewer = await as('vic');
    await viewer.goto(`${url}/console/#/backfills`);
    await viewer.locator('#jobs tbody tr').first().waitFor();
    assert.equal(await viewer.getByRole('button', { name: 'Cancel job' }).count(), 0, 'a viewer gets no controls');
    await assertFitsPhone(page, 'the backfills page');
  });

  step('an sre acknowledges a failing finding in the page; the requester is offered no form; the API then shows it acknowledged', async () => {
    await writeMigrations(dir, {
      ...FIXTURE_BASE, '2000_add-note': FIXTURES.addNote, '3000_add-score': FIXTURES.addScore,
      '4000_drop-email': migrationSource('ALTER TABLE accounts DROP COLUMN email', 'ALTER TABLE accounts ADD COLUMN email text'),
    });
    const created = await api.post('/v1/runs', 'rita', { environment: 'production', description: 'drop email' });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    await until('preflight failed', async () => (await api.get(`/v1/runs/${id}`)).body.status === 'preflight_failed', 60_000);
    const report = async () => (await api.get(`/v1/runs/${id}/preflight`)).body.report as { outcome: string; findings: Array<{ id: string; rule: string; severity: string; acknowledged: { reason: string; by: string; via: string } | null }> };
    const drop = (await report()).findings.find((f) => f.rule === 'ban-drop-column')!;
    assert.equal(drop.severity, 'error');

    const rita = await as('rita');
    await rita.goto(`${url}/console/#/runs/${id}`);
    const ritaRow = rita.locator(`tr[data-finding="${drop.id}"]`);
    await ritaRow.waitFor();
    assert.equal(await ritaRow.getByText('Acknowledge…').count(), 0, 'never offered to the requester');

    const carol = await as('carol');
    await carol.goto(`${url}/console/#/runs/${id}`);
    const row = carol.locator(`tr[data-finding="${drop.id}"]`);
    await row.getByText('Acknowledge…').click();
    await row.getByLabel('Why is this risk accepted?').fill('email moved to the profile service (OPS-77)');
    await assertAccessible(carol, 'the acknowledgement form');
    await row.getByRole('button', { name: 'Acknowledge' }).click();
    await row.getByText('yes: email moved to the profile service (OPS-77) (carol)').waitFor();
    const after = await report();
    const acked = after.findings.find((f) => f.id === drop.id)!;
    assert.deepEqual([acked.severity, acked.acknowledged?.by, acked.acknowledged?.via, acked.acknowledged?.reason], ['warning', 'carol', 'api', 'email moved to the profile service (OPS-77)']);
    assert.equal(after.outcome, 'passed');
    assert.equal((await api.get(`/v1/runs/${id}`)).body.status, 'awaiting_approval');
    await until('awaiting approval in the page', async () => (await statusText(carol)) === 'awaiting approval', 30_000);
    await screenshot(carol, '10-finding-acknowledged');
    await api.post(`/v1/runs/${id}/cancel`, 'olga', {});
  });

  step('rules page, reached from a finding\'s rule link', async () => {
    const page = await as('vic');
    await page.goto(`${url}/console/#/rules/ban-drop-table`);
    await page.locator('#rule-ban-drop-table').waitFor();
    await assertAccessible(page, 'the rules page');
    await screenshot(page, '09-rules');
  });

  step('every console response carried the CSP; no CSP violation, page error or dialog', () => {
    assert.deepEqual(browser.problems, []);
    assert.deepEqual(browser.dialogs, []);
  });
});
