// 200 generated strings carrying NUL, lone surrogates, overlong and otherwise
// invalid UTF-8, and control characters, sent in every text field of every
// endpoint: each path and query parameter, each declared header and each
// string in each JSON body. The fields come from the OpenAPI document the app
// serves, so a field added tomorrow is attacked tomorrow. Every request is
// otherwise well-formed (a real run id, valid required fields), so without
// the central check it would reach the services and the database.
// Expected: 0 × 5xx; every answer is 400 problem+json naming the field; not
// one row of the control or target databases changes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bearer, startTestApp, tokenOf, type TestApp } from '../support/app.js';
import { listeningPort, rawExchange, requestBytes } from '../support/raw-http.js';
import type { TestDatabase } from '../support/db.js';
import { createAwaiting } from '../runs/helpers.js';

let t: TestApp;
let port: number;
let runId: string;

before(async () => {
  t = await startTestApp({ label: 'hygiene' });
  // Listening starts the background work (the notifier); let it drain the
  // outbox of the seed run's events before anything is measured.
  port = await listeningPort(t.app);
  runId = (await createAwaiting(t, 'alice', { environment: 'production', description: 'hygiene target' })).id;
  await t.settle();
  for (let i = 0; i < 150; i++) {
    if ((await t.control.query('SELECT count(*)::int AS n FROM notification_outbox')).rows[0].n === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
});
after(() => t.close());

// ---------------------------------------------------------------- strings

/** A seeded PRNG (mulberry32) so a failure can be replayed. */
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

/** Text, one UTF-16 code unit (maybe a lone surrogate, maybe a control), or raw bytes that are not UTF-8. */
type Segment = { text: string } | { unit: number } | { bytes: number[] };
interface BadString {
  kind: string;
  segments: Segment[];
}

const OVERLONG = [[0xc0, 0x80], [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf]];
const NOT_UTF8 = [[0xff], [0xfe], [0xf5, 0x80, 0x80, 0x80], [0x80], [0xbf], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]];
const C0 = [1, 2, 3, 4, 5, 6, 7, 8, 0x0b, 0x0c, 0x0e, 0x10, 0x1b, 0x1f];

const KINDS: Record<string, (r: () => number) => Segment[]> = {
  'nul': () => [{ unit: 0 }],
  'lone high surrogate': (r) => [{ unit: 0xd800 + Math.floor(r() * 0x400) }],
  'lone low surrogate': (r) => [{ unit: 0xdc00 + Math.floor(r() * 0x400) }],
  'reversed surrogate pair': () => [{ unit: 0xdc00 }, { unit: 0xd800 }],
  'overlong utf-8': (r) => [{ bytes: OVERLONG[Math.floor(r() * OVERLONG.length)]! }],
  'utf-8 encoded surrogate': (r) => [{ bytes: [0xed, 0xa0 + Math.floor(r() * 0x20), 0x80 + Math.floor(r() * 0x40)] }],
  'bytes that are not utf-8': (r) => [{ bytes: NOT_UTF8[Math.floor(r() * NOT_UTF8.length)]! }],
  'c0 control': (r) => [{ unit: C0[Math.floor(r() * C0.length)]! }],
  'del or c1 control': (r) => [{ unit: r() < 0.3 ? 0x7f : 0x80 + Math.floor(r() * 0x20) }],
  'nul and a control': (r) => [{ unit: 0x1b }, { text: '[2J' }, { unit: 0 }, { unit: 0x80 + Math.floor(r() * 0x20) }],
};

function generate(count: number, random: () => number): BadString[] {
  const alphabet = ['a', 'b', 'z', 'X', '0', '9', '-', '_', '.', 'é', '中', ' '];
  const filler = () => Array.from({ length: Math.floor(random() * 3) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  const kinds = Object.keys(KINDS);
  return Array.from({ length: count }, (_, i) => {
    const kind = kinds[i % kinds.length]!;
    return { kind, segments: [{ text: filler() }, ...KINDS[kind]!(random), { text: filler() }] };
  });
}

const STRINGS = generate(200, prng(20261115));

const hex4 = (unit: number) => unit.toString(16).padStart(4, '0');
const isSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdfff;
/** CESU-8: how a lone surrogate looks when someone encodes it anyway. */
const cesu = (unit: number) => [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)];
const pct = (bytes: number[]) => bytes.map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

/** Inside a JSON string: escapes for code units (NUL, surrogates, C0), raw UTF-8 for DEL/C1 (legal JSON), raw bytes as they are. */
function jsonStringBytes(s: BadString): Buffer {
  return Buffer.concat(s.segments.map((seg) => {
    if ('text' in seg) return Buffer.from(JSON.stringify(seg.text).slice(1, -1));
    if ('bytes' in seg) return Buffer.from(seg.bytes);
    return Buffer.from(seg.unit >= 0x7f && !isSurrogate(seg.unit) ? String.fromCharCode(seg.unit) : `\\u${hex4(seg.unit)}`);
  }));
}

/** Percent-encoded for a path segment or query value. */
function percentEncoded(s: BadString): string {
  return s.segments.map((seg) => {
    if ('text' in seg) return encodeURIComponent(seg.text);
    if ('bytes' in seg) return pct(seg.bytes);
    return isSurrogate(seg.unit) ? pct(cesu(seg.unit)) : encodeURIComponent(String.fromCharCode(seg.unit));
  }).join('');
}

/** A header value, as bytes on the wire. */
function headerBytes(s: BadString): Buffer {
  return Buffer.concat(s.segments.map((seg) => {
    if ('text' in seg) return Buffer.from(seg.text, 'utf8');
    if ('bytes' in seg) return Buffer.from(seg.bytes);
    if (isSurrogate(seg.unit)) return Buffer.from(cesu(seg.unit));
    return seg.unit < 0x80 ? Buffer.from([seg.unit]) : Buffer.from(String.fromCharCode(seg.unit), 'utf8');
  }));
}

// ---------------------------------------------------------------- fields

type Schema = {
  type?: string; enum?: unknown[]; format?: string; minimum?: number; required?: string[]; nullable?: boolean;
  properties?: Record<string, Schema>; anyOf?: Schema[]; oneOf?: Schema[];
};
interface Operation {
  method: string;
  path: string;
  parameters: Array<{ in: 'path' | 'query' | 'header'; name: string; required?: boolean; schema: Schema }>;
  body: Schema | null;
}
interface Field {
  op: Operation;
  in: 'path' | 'query' | 'header' | 'body';
  /** Parameter name, or the property path inside the body. */
  name: string[];
  /** The path the problem's errors must name. */
  errorPath: string;
}

function operations(doc: { paths: Record<string, Record<string, Omit<Operation, 'method' | 'path' | 'body'> & { requestBody?: { content: Record<string, { schema: Schema }> } }>> }): Operation[] {
  const out: Operation[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      out.push({ method: method.toUpperCase(), path, parameters: op.parameters ?? [], body: op.requestBody?.content['application/json']?.schema ?? null });
    }
  }
  return out;
}

const branches = (s: Schema): Schema[] => s.anyOf ?? s.oneOf ?? [s];
const isText = (s: Schema): boolean => branches(s).every((b) => b.type === 'string');

/** Every string property of a body schema (nested objects and object branches of unions included). */
function bodyTextFields(schema: Schema, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  for (const branch of branches(schema)) {
    for (const [name, prop] of Object.entries(branch.properties ?? {})) {
      if (isText(prop)) out.push([...prefix, name]);
      else if (branches(prop).some((b) => b.properties)) out.push(...bodyTextFields(prop, [...prefix, name]));
    }
  }
  return out;
}

function fields(ops: Operation[]): Field[] {
  const out: Field[] = [];
  for (const op of ops) {
    // Parameters are text on the wire whatever their schema type (?limit=%00 included).
    for (const p of op.parameters) {
      const where = { path: 'params', query: 'querystring', header: 'headers' }[p.in];
      out.push({ op, in: p.in, name: [p.name], errorPath: `${where}/${p.name.toLowerCase()}` });
    }
    if (op.body) for (const name of bodyTextFields(op.body)) out.push({ op, in: 'body', name, errorPath: `body/${name.join('/')}` });
  }
  return out;
}

// ---------------------------------------------------------------- well-formed requests

const FUTURE = new Date(Date.now() + 7 * 24 * 3600_000).toISOString();
const KNOWN: Record<string, unknown> = {
  environment: 'production', confirm: 'production', description: 'ok', reason: 'ok', comment: 'ok', ticket: 'T-1', name: 'x', at: FUTURE,
};

/** A valid value for a schema: known names first, then enum, format and type. */
function sample(schema: Schema, name: string): unknown {
  const first = branches(schema).find((b) => b.type !== 'null') ?? schema;
  if (first.enum) return first.enum[0];
  if (first.type === 'object' || first.properties) {
    const out: Record<string, unknown> = {};
    for (const key of first.required ?? []) out[key] = sample(first.properties![key]!, key);
    return out;
  }
  if (KNOWN[name] !== undefined) return KNOWN[name];
  if (first.format === 'uuid') return runId;
  if (first.format === 'date-time') return FUTURE;
  if (first.type === 'integer' || first.type === 'number') return first.minimum ?? 1;
  if (first.type === 'boolean') return false;
  return 'x';
}

const MARK = 'HYGIENE-MARK-7f3a';
// production has the target run open; a create there would stop at 409 before any write.
const BODY_OVERRIDES: Record<string, Record<string, unknown>> = { 'POST /v1/runs': { environment: 'staging' } };

/** The request for `field` carrying `bad`; every other part valid. */
function attack(field: Field, bad: BadString): Buffer {
  const { op } = field;
  let path = op.path;
  const query: string[] = [];
  const headers: Record<string, string | Buffer> = { authorization: bearer('root') };
  for (const p of op.parameters) {
    const attacked = field.in === p.in && field.name[0] === p.name;
    if (p.in === 'path') {
      const value = attacked ? percentEncoded(bad) : encodeURIComponent(String(p.name === 'id' ? runId : sample(p.schema, p.name)));
      path = path.replace(`{${p.name}}`, value);
    } else if (p.in === 'query' && (attacked || p.required)) {
      query.push(`${encodeURIComponent(p.name)}=${attacked ? percentEncoded(bad) : encodeURIComponent(String(sample(p.schema, p.name)))}`);
    } else if (p.in === 'header' && attacked) {
      headers[p.name] = headerBytes(bad);
    }
  }
  if (query.length) path += `?${query.join('&')}`;
  let body: Buffer | undefined;
  if (op.body) {
    const value = { ...(sample(op.body, '') ?? {}) as Record<string, unknown>, ...BODY_OVERRIDES[`${op.method} ${op.path}`] };
    if (field.in === 'body') {
      let at = value;
      for (const key of field.name.slice(0, -1)) {
        const branch = branches(op.body).map((b) => b.properties?.[key]).find(Boolean)!;
        at = (at[key] ??= sample(branch, key)) as Record<string, unknown>;
      }
      at[field.name[field.name.length - 1]!] = MARK;
    }
    const [head, tail] = JSON.stringify(value).split(`"${MARK}"`);
    body = tail === undefined ? Buffer.from(head!) : Buffer.concat([Buffer.from(`${head}"`), jsonStringBytes(bad), Buffer.from(`"${tail}`)]);
    headers['content-type'] = 'application/json';
  }
  return requestBytes({ method: op.method, path, headers, body });
}

// ---------------------------------------------------------------- databases

/** Row count and checksum of every table of a database. */
async function tableSums(db: TestDatabase): Promise<Record<string, string>> {
  const tables = await db.query(`SELECT format('%I.%I', table_schema, table_name) AS name FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`);
  const out: Record<string, string> = {};
  for (const { name } of tables.rows as Array<{ name: string }>) {
    const { rows } = await db.query(`SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS sum FROM ${name} t`);
    out[name] = `${rows[0].n} rows, md5 ${rows[0].sum}`;
  }
  return out;
}

const everything = async () => ({
  control: await tableSums(t.control), staging: await tableSums(t.targets.staging), production: await tableSums(t.targets.production),
});

// ---------------------------------------------------------------- the test

test('200 generated bad strings in every text field of every endpoint: 0 × 5xx, 400 problem+json naming the field, 0 rows changed', async () => {
  const ops = operations(t.app.swagger() as unknown as Parameters<typeof operations>[0]);
  const all = fields(ops);
  // The document really drove the attack: every kind of field of the API is in it.
  for (const expected of ['POST /v1/runs body/description', 'POST /v1/runs body/schedule/at', 'POST /v1/runs headers/idempotency-key',
    'GET /v1/runs querystring/cursor', 'GET /v1/runs/{id} params/id', 'POST /v1/runs/{id}/approvals body/comment',
    'POST /v1/runs/{id}/cancel body/reason', 'POST /v1/runs/{id}/rollback/approvals body/comment', 'GET /v1/environments/{name}/windows params/name',
    'POST /v1/etl/pause body/reason', 'POST /v1/backfills body/name', 'POST /v1/backfills/{id}/retry-failures body/reason']) {
    assert.ok(all.some((f) => `${f.op.method} ${f.op.path} ${f.errorPath}` === expected), `the OpenAPI document yields ${expected}`);
  }
  assert.ok(all.length >= 50, `${all.length} text fields`);

  const before = await everything();
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const kinds = Object.keys(KINDS);
  assert.equal(STRINGS.length % kinds.length, 0, 'string i is of kind i % kinds, so (f * kinds + k) % 200 is of kind k');
  let sent = 0;
  const used = new Set<number>();
  for (const [f, field] of all.entries()) {
    // Each field gets one string of every kind; the 200 strings rotate through the fields.
    for (const [k] of kinds.entries()) {
      const index = (f * kinds.length + k) % STRINGS.length;
      const bad = STRINGS[index]!;
      used.add(index);
      const res = await rawExchange(port, attack(field, bad));
      sent++;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const what = `${field.op.method} ${field.op.path} ${field.errorPath} with ${bad.kind} ${JSON.stringify(bad.segments)}`;
      if (res.status >= 500) { failures.push(`${what} -> ${res.status} ${res.text.slice(0, 200)}`); continue; }
      if (res.status !== 400) { failures.push(`${what} -> ${res.status}, expected 400: ${res.text.slice(0, 200)}`); continue; }
      if (!/^application\/problem\+json/.test(res.headers['content-type'] ?? '')) { failures.push(`${what} -> content-type ${res.headers['content-type']}`); continue; }
      const problem = res.json() as { status: number; detail: string; errors?: Array<{ path: string; message: string }> };
      if (problem.status !== 400 || typeof problem.detail !== 'string') failures.push(`${what} -> not a problem: ${res.text.slice(0, 200)}`);
      else if (!problem.errors?.some((e) => e.path === field.errorPath)) failures.push(`${what} -> does not name ${field.errorPath}: ${res.text.slice(0, 300)}`);
    }
  }
  assert.equal(used.size, STRINGS.length, 'all 200 strings were sent');
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${sent} requests misbehaved (${JSON.stringify([...statuses])})`);
  await t.settle();
  assert.deepEqual(await everything(), before, 'not one row changed in the control or target databases');

  // The requests were well-formed but for the attacked field: the same ones with good text are served.
  const created = await t.http().post('/v1/runs').set('authorization', bearer('root')).set('idempotency-key', 'hygiene-ok')
    .send({ environment: 'staging', description: 'ok\ttabs\nand newlines\r\nare fine', ticket: 'T-1', schedule: { mode: 'now' } });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.description, 'ok\ttabs\nand newlines\r\nare fine');
  const approved = await t.http().post(`/v1/runs/${runId}/approvals`).set('authorization', `Bearer ${tokenOf('bob')}`)
    .send({ role: 'engineering', decision: 'approve', comment: 'ok — ünïcödé 中文 🚀 fine' });
  assert.equal(approved.status, 201, approved.text);
  assert.equal(approved.body.approvals[0].comment, 'ok — ünïcödé 中文 🚀 fine');
  await t.settle();
});
