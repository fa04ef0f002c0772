import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildApp } from '../../src/app.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import pg from 'pg';
import { NOTIFIER_LOCK_CLASS } from '../../database/sql/notifications.js';
import { retryDelayMs } from '../../services/notify/notifier.js';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { FIXTURE_BASE, FIXTURES, writeMigrations } from '../support/migrations.js';
import { startWebhookReceiver, type Received, type WebhookReceiver } from '../support/webhooks.js';

// Webhooks go to a real local HTTP server; the service runs on real
// PostgreSQL. The webhook URLs carry secrets (Slack's is its path, the
// generic one a token parameter) that must never show up anywhere else.
const SLACK_PATH = '/services/T000/B000/sl4ck-s3cret-path';
const OPS_PATH = '/ops?token=ops-s3cret-token';
const DOWN_PATH = '/down/d0wn-s3cret';
const SECRETS = ['sl4ck-s3cret-path', 'ops-s3cret-token', 'd0wn-s3cret'];

let t: TestApp;
let hooks: WebhookReceiver;
let dir: string;
const logs: string[] = [];

const as = (who: Subject) => ({ authorization: bearer(who) });
const api = (method: 'get' | 'post', path: string, who: Subject, body?: object) => {
  const req = t.http()[method](path).set(as(who));
  return body === undefined ? req : req.send(body);
};

async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Runs one environment's run from creation to a finished apply, through the API only. */
async function fullRun(environment: 'staging' | 'production', description: string): Promise<string> {
  const created = await api('post', '/v1/runs', 'alice', { environment, description, ticket: 'OPS-42' });
  assert.equal(created.status, 201, created.text);
  const id = created.body.id as string;
  await t.settle();
  const approvers: [Subject, string][] = environment === 'production' ? [['bob', 'engineering'], ['carol', 'sre']] : [['bob', 'engineering']];
  for (const [who, role] of approvers) {
    const res = await api('post', `/v1/runs/${id}/approvals`, who, { role, decision: 'approve' });
    assert.equal(res.status, 201, res.text);
  }
  const applied = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: environment, reason: 'notification test' });
  assert.equal(applied.status, 202, applied.text);
  await t.settle();
  const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  return id;
}

const statusOf = (r: Received) => (r.body as { status: string }).status;
const textOf = (r: Received) => (r.body as { text: string }).text;
const eventIdOf = (r: Received) => (r.body as { eventId: string }).eventId;
const ofRun = (id: string) => (r: Received) => (r.body as { run?: { id?: string } }).run?.id === id;

type RunEvent = { type: string; actor: string; details: Record<string, any> };
const eventsOf = async (id: string) => (await api('get', `/v1/runs/${id}/events`, 'vic')).body as RunEvent[];

// Delivery is at least once. A POST whose answer comes after NOTIFY_TIMEOUT_MS
// is recorded as retrying and sent again, though the target may have got it:
// on a loaded machine this very process (app and receiver share one event
// loop) answers late, so a receiver can hold a message twice in a row. The
// tests tell messages apart by their first copy, and check every copy against
// the attempts the run's events record.

/** The messages as their receiver tells them apart: a copy of the one just before (a resend) collapsed. */
function firstCopies(got: Received[], key: (r: Received) => string): Received[] {
  return got.filter((r, i) => i === 0 || key(got[i - 1]!) !== key(r));
}

/**
 * Per target and announced event: one delivery, and never more copies at the
 * receiver than attempts recorded for it. Two replicas sending one delivery,
 * or one event expanded twice, would break one or the other.
 */
function assertCopiesWithinAttempts(id: string, events: RunEvent[]): void {
  const ops = hooks.to(OPS_PATH).filter(ofRun(id));
  const typeOfText = new Map(ops.map((r) => [textOf(r), (r.body as { event: string }).event]));
  const received = [
    ...ops.map((r) => `webhook:OPS_HOOK ${(r.body as { event: string }).event}`),
    ...hooks.to(SLACK_PATH).filter((r) => typeOfText.has(textOf(r))).map((r) => `slack:SLACK_HOOK ${typeOfText.get(textOf(r))}`),
  ];
  const attempts = events.filter((e) => /^notification\.(delivered|retrying|failed)$/.test(e.type));
  for (const key of new Set(received)) {
    const mine = attempts.filter((e) => `${e.details.target} ${e.details.notifies}` === key);
    assert.equal(new Set(mine.map((e) => e.details.deliveryId)).size, 1, `${key}: one delivery`);
    const copies = received.filter((k) => k === key).length;
    assert.ok(copies <= mine.length, `${key}: ${copies} copies received, ${mine.length} attempts recorded`);
  }
}

before(async () => {
  hooks = await startWebhookReceiver();
  dir = await mkdtemp(join(tmpdir(), 'sf-notify-'));
  await writeMigrations(dir, FIXTURE_BASE);
  const common = `migrationsDir: ${JSON.stringify(dir)}, workers: { pause: { method: 'sql' } }, verify: { smokeEtl: false, watchMinutes: 0.01 }`;
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', approvals: { required: ['any'] }, ${common},
      notify: [{ kind: 'slack', urlEnv: 'SLACK_HOOK' }, { kind: 'webhook', urlEnv: 'OPS_HOOK' }] },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', ${common},
      notify: [{ kind: 'webhook', urlEnv: 'DOWN_HOOK', events: ['created', 'approved', 'succeeded'] }] } } };`;
  t = await startTestApp({
    label: 'notify',
    migrationConfigSource: config,
    logStream: { write: (line) => { logs.push(line); } },
    env: {
      SLACK_HOOK: `${hooks.base}${SLACK_PATH}`,
      OPS_HOOK: `${hooks.base}${OPS_PATH}`,
      DOWN_HOOK: `${hooks.base}${DOWN_PATH}`,
      NOTIFY_POLL_MS: '20',
      NOTIFY_RETRY_BASE_MS: '20',
      NOTIFY_MAX_ATTEMPTS: '3',
      NOTIFY_TIMEOUT_MS: '300',
    },
  });
  t.app.services.notifier.start();
});

after(async () => {
  await t.close();
  await hooks.close();
  await rm(dir, { recursive: true, force: true });
});

describe('notifications', () => {
  test('a whole run is announced to Slack and a generic webhook, in order, with a retry after a 500 recorded in the run events', async () => {
    hooks.respond(SLACK_PATH, (_req, nth) => (nth === 1 ? 500 : 200));
    const id = await fullRun('staging', 'add hero power column');
    const expected = ['created', 'awaiting_approval', 'approved', 'scheduled', 'applying', 'succeeded'];

    const ops = await until('six generic webhook messages', () => {
      const got = firstCopies(hooks.to(OPS_PATH).filter(ofRun(id)), eventIdOf);
      return got.length >= expected.length && got;
    });
    assert.deepEqual(ops.map(statusOf), expected, 'one message per transition, in the order the run went through them');
    assert.equal(new Set(ops.map(eventIdOf)).size, expected.length, 'a message comes again only right after its own earlier copy');
    const first = ops[0]!.body as Record<string, any>;
    assert.equal(first.event, 'run.created');
    assert.equal(first.environment, 'staging');
    assert.equal(first.actor, 'alice');
    assert.deepEqual(
      { id: first.run.id, description: first.run.description, ticket: first.run.ticket, requestedBy: first.run.requestedBy },
      { id, description: 'add hero power column', ticket: 'OPS-42', requestedBy: 'alice' },
    );
    assert.match(first.text, /^\[staging\] Run [0-9a-f]{8} "add hero power column" \(OPS-42\) created by alice with 2 pending migrations/);
    assert.equal(ops[0]!.headers['content-type'], 'application/json');

    // The scheduled message says when, and (from the preflight estimate) when it should be done.
    const scheduled = ops[3]!.body as Record<string, any>;
    assert.match(scheduled.run.scheduledFor, /^\d{4}-\d{2}-\d{2}T/);
    assert.equal(typeof scheduled.details.estimatedMs, 'number', 'preflight gave an estimate');
    assert.equal(new Date(scheduled.run.eta).getTime(), new Date(scheduled.run.scheduledFor).getTime() + scheduled.details.estimatedMs);
    assert.match(scheduled.text, /is scheduled to apply at .*; ETA /);

    // Slack gets {"text"} only. Its first POST got a 500; the same message came again and
    // every later message waited for it, so the channel still reads in order.
    const slack = await until('Slack messages', () => {
      const got = hooks.to(SLACK_PATH);
      return firstCopies(got, textOf).length >= expected.length && got;
    });
    assert.deepEqual(Object.keys(slack[0]!.body as object), ['text']);
    assert.equal(textOf(slack[0]!), textOf(slack[1]!), 'the message that got a 500 is retried');
    const told = firstCopies(slack, textOf);
    assert.deepEqual(told.map(textOf), ops.map(textOf), 'Slack and the webhook tell the same story in the same order');
    assert.match(textOf(told[5]!), /succeeded\.$/);

    const events = await until('the delivery events', async () => {
      const all = await eventsOf(id);
      return all.filter((e) => e.type === 'notification.delivered').length === 12 && all;
    });
    const retries = events.filter((e) => e.type === 'notification.retrying');
    const late = (e: RunEvent) => e.details.httpStatus === null && e.details.error === 'no answer within 300 ms';
    const the500 = (e: RunEvent) => e.details.target === 'slack:SLACK_HOOK' && e.details.notifies === 'run.created' && e.details.httpStatus === 500 && e.details.error === 'HTTP 500';
    // Slack's first answer was the 500 (recorded as such unless it came after the time limit);
    // every other target answered 200, so any other retry is an answer that came too late.
    const firstTry = retries.find((e) => e.details.target === 'slack:SLACK_HOOK' && e.details.notifies === 'run.created' && e.details.attempt === 1);
    assert.ok(firstTry && (the500(firstTry) || late(firstTry)), JSON.stringify(retries.map((e) => e.details)));
    assert.ok(retries.filter(the500).length <= 1);
    for (const r of retries) assert.ok(the500(r) || late(r), JSON.stringify(r.details));
    const delivered = events.filter((e) => e.type === 'notification.delivered');
    for (const d of delivered) {
      // A retried delivery goes out again, and its success is recorded at the attempt after its last retry.
      assert.equal(d.details.attempt, 1 + retries.filter((r) => r.details.deliveryId === d.details.deliveryId).length, JSON.stringify(d.details));
      assert.equal(d.actor, 'notifier');
      assert.equal(d.details.httpStatus, 200);
    }
    assertCopiesWithinAttempts(id, events);

    const metrics = await t.http().get('/metrics');
    const slackRetries = retries.filter((e) => e.details.target === 'slack:SLACK_HOOK').length;
    assert.match(metrics.text, new RegExp(`starforge_notifications_total\\{environment="staging",kind="slack",outcome="retrying"\\} ${slackRetries}\\b`));
    assert.match(metrics.text, /starforge_notifications_total\{environment="staging",kind="webhook",outcome="delivered"\} 6\b/);
  });

  test('a webhook that hangs or keeps failing is given up and recorded; the run goes on untouched', async () => {
    hooks.respond(DOWN_PATH, (_req, nth) => (nth === 1 ? 'hang' : 500));
    const id = await fullRun('production', 'webhook down');
    // Only the statuses this target listens for; each tried NOTIFY_MAX_ATTEMPTS (3) times.
    const failed = await until('three failed deliveries', async () => {
      const all = (await api('get', `/v1/runs/${id}/events`, 'vic')).body as { type: string; details: Record<string, any> }[];
      const f = all.filter((e) => e.type === 'notification.failed');
      return f.length === 3 && f;
    });
    assert.deepEqual(failed.map((e) => e.details.attempts), [3, 3, 3]);
    const down = hooks.to(DOWN_PATH);
    assert.equal(down.length, 9);
    assert.deepEqual(down.map(statusOf), ['created', 'created', 'created', 'approved', 'approved', 'approved', 'succeeded', 'succeeded', 'succeeded']);
    const events = (await api('get', `/v1/runs/${id}/events`, 'vic')).body as { type: string; details: Record<string, any> }[];
    const hung = events.find((e) => e.type === 'notification.retrying' && e.details.attempt === 1);
    assert.equal(hung?.details.error, 'no answer within 300 ms');
    assert.equal(hung?.details.httpStatus, null);
    const state = await t.control.query(`SELECT status, attempts, last_error FROM notification_deliveries WHERE run_id = $1 ORDER BY id`, [id]);
    assert.deepEqual(state.rows.map((r) => [r.status, r.attempts, r.last_error]), [['failed', 3, 'HTTP 500'], ['failed', 3, 'HTTP 500'], ['failed', 3, 'HTTP 500']]);
    assert.equal((await api('get', `/v1/runs/${id}`, 'vic')).body.status, 'succeeded');
  });

  test('webhook URLs appear nowhere: not in events, runs, reports, logs or /metrics', async () => {
    await until('logs and events flushed', () => hooks.received.length > 0);
    const runs = (await api('get', '/v1/runs?limit=50', 'vic')).body.items as { id: string }[];
    const texts = [logs.join('\n'), (await t.http().get('/metrics')).text];
    for (const run of runs) {
      texts.push(JSON.stringify((await api('get', `/v1/runs/${run.id}`, 'vic')).body));
      texts.push(JSON.stringify((await api('get', `/v1/runs/${run.id}/events`, 'vic')).body));
      texts.push((await api('get', `/v1/runs/${run.id}/report?format=md`, 'vic')).text);
    }
    const deliveries = await t.control.query('SELECT * FROM notification_deliveries');
    texts.push(JSON.stringify(deliveries.rows));
    assert.ok(logs.some((l) => l.includes('webhook delivery failed')), 'failed deliveries are logged (without their URL)');
    for (const secret of SECRETS) {
      for (const text of texts) assert.equal(text.includes(secret), false, `${secret} leaked`);
    }
  });

  test('two replicas deliver each message exactly once', async () => {
    await t.app.services.notifier.stop();
    const second = await buildApp(t.config, { logger: false });
    try {
      const before = hooks.received.length;
      await writeMigrations(dir, { ...FIXTURE_BASE, '1200_add-note': FIXTURES.addNote });
      const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'two replicas' });
      assert.equal(created.status, 201, created.text);
      const id = created.body.id as string;
      await t.settle();
      assert.equal((await api('post', `/v1/runs/${id}/cancel`, 'alice', { reason: 'not today' })).status, 200);
      // created, awaiting_approval, cancelled: 3 messages x 2 targets, raced for by both replicas.
      const messages = () => new Set(hooks.received.slice(before).map((r) => `${r.path} ${textOf(r)}`));
      await until('six deliveries', async () => {
        await Promise.all([t.app.services.notifier.tick(), second.services.notifier.tick(), t.app.services.notifier.tick(), second.services.notifier.tick()]);
        return messages().size >= 6;
      });
      await Promise.all([t.app.services.notifier.tick(), second.services.notifier.tick()]);
      const got = hooks.received.slice(before);
      assert.equal(messages().size, 6, got.map((r) => `${r.path} ${textOf(r)}`).join('\n'));
      assert.deepEqual(firstCopies(got.filter((r) => r.path === OPS_PATH), eventIdOf).map(statusOf), ['created', 'awaiting_approval', 'cancelled']);
      // No message delivered twice: a second copy is only ever a retry one replica recorded.
      assertCopiesWithinAttempts(id, await eventsOf(id));
      assert.match(textOf(got.find((r) => statusOf(r) === 'cancelled')!), /was cancelled by alice \(not today\)\.$/);
    } finally {
      await second.close();
      t.app.services.notifier.start();
    }
  });
});

test('one replica expands the outbox at a time: while another holds the expand lock, events wait in the outbox', async () => {
  await t.app.services.notifier.stop();
  const holder = new pg.Client({ connectionString: t.control.url });
  await holder.connect();
  try {
    await writeMigrations(dir, { ...FIXTURE_BASE, '1300_add-score': FIXTURES.addScore });
    await holder.query('SELECT pg_advisory_lock($1, 0)', [NOTIFIER_LOCK_CLASS]);
    const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'expand lock' });
    assert.equal(created.status, 201, created.text);
    await t.app.services.notifier.tick();
    const queued = await t.control.query('SELECT count(*)::int AS n FROM notification_outbox');
    assert.ok(queued.rows[0].n >= 1, 'the event is still queued');
    assert.equal((await t.control.query('SELECT count(*)::int AS n FROM notification_deliveries WHERE run_id = $1', [created.body.id])).rows[0].n, 0);
    await holder.query('SELECT pg_advisory_unlock($1, 0)', [NOTIFIER_LOCK_CLASS]);
    await t.app.services.notifier.tick();
    assert.equal((await t.control.query('SELECT count(*)::int AS n FROM notification_outbox')).rows[0].n, 0);
    assert.ok((await t.control.query('SELECT count(*)::int AS n FROM notification_deliveries WHERE run_id = $1', [created.body.id])).rows[0].n >= 2);
    await t.settle();
    await api('post', `/v1/runs/${created.body.id}/cancel`, 'alice', {});
  } finally {
    await holder.end();
    t.app.services.notifier.start();
  }
});

describe('notification config', () => {
  const tmp = () => mkdtemp(join(tmpdir(), 'sf-notify-config-'));
  async function configWith(notify: string, env: Record<string, string>) {
    const d = await tmp();
    const path = join(d, 'migration-config.js');
    await writeFile(path, `export default { environments: { staging: { databaseUrlEnv: 'S_URL', notify: ${notify} } } };`);
    try {
      return await loadConfig({ MIGRATION_CONFIG: path, ...env });
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  }
  const refused = async (notify: string, env: Record<string, string>, key: string, message: RegExp) => {
    await assert.rejects(configWith(notify, env), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, key);
      assert.match(err.message, message);
      assert.equal(err.message.includes('s3cret'), false, 'the URL is never echoed');
      return true;
    });
  };

  test('a target whose variable is unset or not an http(s) URL stops start-up naming the variable', async () => {
    await refused(`[{ kind: 'slack', urlEnv: 'HOOK' }]`, {}, 'HOOK', /not set \(environments\.staging\.notify\[0\]\.urlEnv/);
    await refused(`[{ kind: 'slack', urlEnv: 'HOOK' }]`, { HOOK: 'not a url s3cret' }, 'HOOK', /not a valid URL/);
    await refused(`[{ kind: 'slack', urlEnv: 'HOOK' }]`, { HOOK: 'ftp://x/s3cret' }, 'HOOK', /http/);
    await refused(`[{ kind: 'teams', urlEnv: 'HOOK' }]`, { HOOK: 'https://x/s3cret' }, 'environments.staging.notify[0].kind', /slack/);
    await refused(`[{ kind: 'slack', urlEnv: 'HOOK', events: ['done'] }]`, { HOOK: 'https://x/s3cret' }, 'environments.staging.notify[0].events[0]', /run status/);
  });

  test('targets listen to the announced statuses unless they list their own; URLs are kept by variable name', async () => {
    const config = await configWith(`[{ kind: 'webhook', urlEnv: 'HOOK' }, { kind: 'slack', urlEnv: 'HOOK2', events: ['failed'] }]`, { HOOK: 'https://hooks.example/a', HOOK2: 'http://10.0.0.1/b' });
    const [a, b] = config.environments.staging!.notify;
    assert.ok(a!.events.includes('succeeded') && a!.events.includes('created') && !a!.events.includes('verifying'));
    assert.deepEqual(b!.events, ['failed']);
    assert.deepEqual(config.notifyUrls, { HOOK: 'https://hooks.example/a', HOOK2: 'http://10.0.0.1/b' });
  });

  test('retry delays double from the base, with jitter, and are capped at five minutes', () => {
    assert.equal(retryDelayMs(1000, 1, () => 0.5), 1000);
    assert.equal(retryDelayMs(1000, 4, () => 0.5), 8000);
    assert.equal(retryDelayMs(1000, 4, () => 0), 6400);
    assert.equal(retryDelayMs(1000, 4, () => 1), 9600);
    assert.equal(retryDelayMs(1000, 30, () => 0.5), 300_000);
  });
});
