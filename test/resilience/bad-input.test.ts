import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bearer, startTestApp, tokenOf, type TestApp } from '../support/app.js';

// Generated malformed requests across the API: none may get a 5xx, none may
// change a row, and the service must stay healthy. Every request is broken in
// at least one way, so none can legitimately succeed.
let t: TestApp;

const TABLES = ['runs', 'run_events', 'run_approvals', 'idempotency_keys', 'run_reports', 'backups', 'rollback_requests', 'run_logs', 'migration_ledger'];

async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) out[table] = (await t.control.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
  return out;
}

/** A small seeded PRNG (mulberry32) so a failure can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const BAD_IDS = ['not-a-uuid', '123', '../../etc/passwd', '%2e%2e%2fetc%2fpasswd', "'; DROP TABLE runs; --", 'ffffffff-ffff-ffff-ffff-ffffffffffff', '00000000-0000-0000-0000-000000000000', 'x'.repeat(300), '%00', 'ü'];
const BAD_VALUES: unknown[] = [null, 42, -1, 1.5, true, [], {}, '', 'x'.repeat(70_000), '../../etc/passwd', '\u0000', { $gt: '' }, ['a'], 'Robert"); DROP TABLE runs;--', 1e308, 'production\n'];
const FIELDS: Record<string, string[]> = {
  create: ['environment', 'description', 'ticket', 'to', 'schedule', 'extra'],
  approve: ['role', 'decision', 'comment', 'extra'],
  apply: ['confirm', 'overrideWindow', 'reason', 'extra'],
  rollback: ['mode', 'confirm', 'reason', 'overrideWindow', 'extra'],
  decide: ['decision', 'comment', 'planDigest', 'extra'],
};

interface Req {
  method: 'get' | 'post';
  path: string;
  body?: unknown;
  raw?: string;
  type?: string;
  auth?: string | null;
}

function generate(random: () => number, count: number): Req[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const body = (kind: keyof typeof FIELDS): Record<string, unknown> => {
    const base: Record<string, unknown> = {};
    // Every body gets at least one bad field; an unknown id later makes the rest moot.
    const n = 1 + Math.floor(random() * 3);
    for (let i = 0; i < n; i++) base[pick(FIELDS[kind]!)] = pick(BAD_VALUES);
    return base;
  };
  const out: Req[] = [];
  for (let i = 0; i < count; i++) {
    const id = pick(BAD_IDS);
    const shape = Math.floor(random() * 15);
    switch (shape) {
      case 0: out.push({ method: 'post', path: '/v1/runs', body: body('create') }); break;
      case 1: out.push({ method: 'post', path: '/v1/runs', raw: pick(['{', '{"environment":', 'null', '[]', '"x"', '{"a":1}}', '\u0000']), type: 'application/json' }); break;
      case 2: out.push({ method: 'post', path: '/v1/runs', raw: 'environment=staging', type: pick(['application/x-www-form-urlencoded', 'text/plain', 'application/xml', 'multipart/form-data; boundary=x']) }); break;
      case 3: out.push({ method: 'get', path: `/v1/runs?${pick(['limit=0', 'limit=-1', 'limit=abc', 'limit=100000', 'status=nope', 'cursor=%%%', 'cursor=' + 'A'.repeat(200), 'environment=../../x', 'unknown=1'])}` }); break;
      case 4: out.push({ method: 'get', path: `/v1/runs/${encodeURIComponent(id)}` }); break;
      case 5: out.push({ method: 'post', path: `/v1/runs/${encodeURIComponent(id)}/approvals`, body: random() < 0.5 ? body('approve') : { role: 'sre', decision: 'approve' } }); break;
      case 6: out.push({ method: 'post', path: `/v1/runs/${encodeURIComponent(id)}/cancel`, body: random() < 0.5 ? { reason: pick(BAD_VALUES) } : {} }); break;
      case 7: out.push({ method: 'post', path: `/v1/runs/${encodeURIComponent(id)}/apply`, body: random() < 0.5 ? body('apply') : { confirm: 'staging' } }); break;
      case 8: out.push({ method: 'post', path: `/v1/runs/${encodeURIComponent(id)}/rollback`, body: random() < 0.5 ? body('rollback') : { mode: 'down', confirm: 'staging', reason: 'x' } }); break;
      case 9: out.push({ method: 'post', path: `/v1/runs/${encodeURIComponent(id)}/${pick(['rollback/approvals', 'overrides/approvals'])}`, body: random() < 0.5 ? body('decide') : { decision: 'approve', planDigest: 'a'.repeat(64) } }); break;
      case 10: out.push({ method: 'get', path: `/v1/runs/${encodeURIComponent(id)}/${pick(['events', 'logs', 'report', 'report?format=pdf', 'preflight', 'preflight?format=xml', 'rollback', 'rollback/plan?mode=down', 'rollback/plan?mode=up', 'rollback/plan', 'overrides'])}` }); break;
      case 11: out.push({ method: 'post', path: `/v1/runs/${encodeURIComponent(id)}/preflight`, body: {} }); break;
      case 12: out.push({ method: pick(['get', 'post'] as const), path: pick(['/v1/runs', '/v1/environments', `/v1/runs/${id}`]), body: {}, auth: pick([null, 'Bearer nope', 'Basic abc', `Bearer ${tokenOf('root')}x`, 'Bearer']) }); break;
      case 13: out.push({ method: 'post', path: '/v1/runs', body: { environment: pick(['nowhere', 'prod', 'staging-2']), description: 'well-formed, unknown environment' } }); break;
      default: out.push({ method: 'post', path: '/v1/runs', body: { environment: 'staging', description: 'x', ...body('create'), unexpected: pick(BAD_VALUES) } });
    }
  }
  return out;
}

before(async () => {
  t = await startTestApp({ label: 'resilience' });
});
after(() => t.close());

test('1,200 generated malformed requests: no 5xx, all problem+json, no row written, still healthy', async () => {
  const before = await counts();
  const requests = generate(prng(20261123), 1200);
  const statuses = new Map<number, number>();
  for (const r of requests) {
    let req = t.http()[r.method](r.path);
    if (r.auth !== null) req = req.set('authorization', r.auth ?? bearer('root'));
    if (r.raw !== undefined) req = req.set('content-type', r.type ?? 'application/json').send(r.raw);
    else if (r.body !== undefined) req = req.send(r.body as object);
    const res = await req;
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.ok(res.status < 500, `${r.method.toUpperCase()} ${r.path} ${JSON.stringify(r.body ?? r.raw ?? '').slice(0, 200)} -> ${res.status} ${res.text.slice(0, 300)}`);
    assert.ok(res.status >= 400, `${r.method.toUpperCase()} ${r.path} unexpectedly succeeded (${res.status})`);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `${r.path} -> ${res.status}`);
  }
  await t.settle();
  assert.deepEqual(await counts(), before, 'no row changed');
  const health = await t.http().get('/healthz');
  assert.equal(health.status, 200);
  const ready = await t.http().get('/readyz');
  assert.equal(ready.status, 200);
  // Every kind of refusal showed up, so the generator really covered the surface.
  for (const code of [400, 401, 404, 413, 415, 422]) assert.ok(statuses.get(code), `saw some ${code}s: ${JSON.stringify([...statuses])}`);
});
