// The schema fingerprint's object kinds beyond relations, types and functions
// (issue 16, reversibility by schema diff): casts, operators, operator
// classes and families, collations, text search objects, foreign-data
// wrappers, servers and user mappings, owners, privileges, default
// privileges and comments. For each, an up whose down forgets it differs
// from the schema before the up, and the difference is named in words; the
// whole down brings the fingerprint back. Read as the rehearsal reads: one
// fingerprintReader across every step (its relation cache must see a
// comment or a grant), checked against a full read each time.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  asOfFormat, describeDiff, diffFingerprints, diffSentence, fingerprintDigest, fingerprintReader, fingerprintRows, readFingerprint, type SchemaFingerprint,
} from '../../services/migrations/schema-fingerprint.js';
import { adminQuery, createTestDatabase, type TestDatabase } from '../support/db.js';

const scope = { migrationsSchema: 'public', migrationsTable: 'pgmigrations' };
const suffix = randomBytes(4).toString('hex');
// Cluster-global: named for this file, dropped after it.
const ROLE = `sf_fp_role_${suffix}`;
const READER = `sf_fp_reader_${suffix}`;
const SERVER_PASSWORD = `server-pw-${suffix}`;
const MAPPING_PASSWORD = `mapping-pw-${suffix}`;
// The embedded server asks every role for a password (SCRAM); the machine's trusts 127.0.0.1.
const READER_PASSWORD = `reader-pw-${suffix}`;

// What every case starts from.
const PRELUDE = `
  CREATE TYPE fp_kind AS ENUM ('a', 'b');
  CREATE TABLE fp_owned (id int PRIMARY KEY, name text);
  CREATE FUNCTION fp_f() RETURNS int LANGUAGE sql AS 'SELECT 1';
  CREATE SCHEMA fp_schema;
  CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
  CREATE OPERATOR FAMILY fp_family USING btree;
  CREATE TEXT SEARCH CONFIGURATION fp_cfg2 (COPY = simple);
  CREATE FOREIGN DATA WRAPPER fp_w0;
  CREATE SERVER fp_s0 FOREIGN DATA WRAPPER fp_w0 OPTIONS (host 'db.internal', password '${SERVER_PASSWORD}');
  COMMENT ON TABLE fp_owned IS 'before';`;

interface Case {
  name: string;
  up: string;
  /** The down that forgets something. */
  partialDown: string;
  /** What it forgot: partialDown + rest is the whole down. */
  rest: string;
  /** describeDiff's sentence after the partial down. */
  says: RegExp;
}

const CASES: Case[] = [
  {
    name: 'a cast',
    up: 'CREATE TABLE fp_cast_user (id int); CREATE CAST (text AS fp_kind) WITH INOUT AS ASSIGNMENT',
    partialDown: 'DROP TABLE fp_cast_user',
    rest: 'DROP CAST (text AS fp_kind)',
    says: /^leaves cast \(text AS public\.fp_kind\)$/,
  },
  {
    name: 'an operator',
    up: 'CREATE OPERATOR public.<=> (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq, COMMUTATOR = <=>)',
    partialDown: '',
    rest: 'DROP OPERATOR public.<=> (int, int)',
    says: /^leaves operator public\.<=>\(integer,integer\)$/,
  },
  {
    name: "an operator's estimator",
    up: 'ALTER OPERATOR === (int, int) SET (RESTRICT = eqsel, JOIN = eqjoinsel)',
    partialDown: 'ALTER OPERATOR === (int, int) SET (JOIN = NONE)',
    rest: 'ALTER OPERATOR === (int, int) SET (RESTRICT = NONE)',
    says: /^changes operator public\.===\(integer,integer\)$/,
  },
  {
    name: 'an operator class (and the family it makes)',
    up: 'CREATE OPERATOR CLASS fp_ops FOR TYPE int USING btree AS OPERATOR 1 <, OPERATOR 3 =, FUNCTION 1 btint4cmp(int, int)',
    partialDown: '',
    rest: 'DROP OPERATOR FAMILY fp_ops USING btree',
    says: /^leaves operator class public\.fp_ops using btree, operator family public\.fp_ops using btree$/,
  },
  {
    name: "an operator family's member",
    up: 'ALTER OPERATOR FAMILY fp_family USING btree ADD OPERATOR 1 < (int, int)',
    partialDown: '',
    rest: 'ALTER OPERATOR FAMILY fp_family USING btree DROP OPERATOR 1 (int, int)',
    says: /^changes operator family public\.fp_family using btree$/,
  },
  {
    name: 'a collation',
    up: 'CREATE COLLATION fp_coll FROM "C"',
    partialDown: '',
    rest: 'DROP COLLATION fp_coll',
    says: /^leaves collation public\.fp_coll$/,
  },
  {
    name: 'a text search configuration and dictionary',
    up: 'CREATE TEXT SEARCH DICTIONARY fp_dict (TEMPLATE = simple, STOPWORDS = english); CREATE TEXT SEARCH CONFIGURATION fp_cfg (COPY = simple)',
    partialDown: 'DROP TEXT SEARCH CONFIGURATION fp_cfg',
    rest: 'DROP TEXT SEARCH DICTIONARY fp_dict',
    says: /^leaves text search dictionary public\.fp_dict$/,
  },
  {
    name: "a text search configuration's mapping",
    up: 'ALTER TEXT SEARCH CONFIGURATION fp_cfg2 ALTER MAPPING FOR asciiword WITH english_stem',
    partialDown: '',
    rest: 'ALTER TEXT SEARCH CONFIGURATION fp_cfg2 ALTER MAPPING FOR asciiword WITH simple',
    says: /^changes text search configuration public\.fp_cfg2$/,
  },
  {
    name: 'a text search parser and template',
    up: 'CREATE TEXT SEARCH PARSER fp_prs (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, LEXTYPES = prsd_lextype); ' +
      'CREATE TEXT SEARCH TEMPLATE fp_tmpl (LEXIZE = dsimple_lexize, INIT = dsimple_init)',
    partialDown: '',
    rest: 'DROP TEXT SEARCH TEMPLATE fp_tmpl; DROP TEXT SEARCH PARSER fp_prs',
    says: /^leaves text search parser public\.fp_prs, text search template public\.fp_tmpl$/,
  },
  {
    name: 'a foreign-data wrapper, a server and a user mapping',
    up: `CREATE FOREIGN DATA WRAPPER fp_w; CREATE SERVER fp_s TYPE 'pg' VERSION '15' FOREIGN DATA WRAPPER fp_w OPTIONS (host 'h', password '${SERVER_PASSWORD}');` +
      ` CREATE USER MAPPING FOR PUBLIC SERVER fp_s OPTIONS (user 'app', password '${MAPPING_PASSWORD}')`,
    partialDown: '',
    rest: 'DROP USER MAPPING FOR PUBLIC SERVER fp_s; DROP SERVER fp_s; DROP FOREIGN DATA WRAPPER fp_w',
    says: /^leaves foreign-data wrapper fp_w, server fp_s, user mapping for public on server fp_s$/,
  },
  {
    name: 'a user mapping',
    up: `CREATE USER MAPPING FOR ${ROLE} SERVER fp_s0 OPTIONS (password '${MAPPING_PASSWORD}')`,
    partialDown: '',
    rest: `DROP USER MAPPING FOR ${ROLE} SERVER fp_s0`,
    says: new RegExp(`^leaves user mapping for ${ROLE} on server fp_s0$`),
  },
  {
    name: "a server's password",
    up: "ALTER SERVER fp_s0 OPTIONS (SET password 'rotated')",
    partialDown: '',
    rest: `ALTER SERVER fp_s0 OPTIONS (SET password '${SERVER_PASSWORD}')`,
    says: /^changes server fp_s0$/,
  },
  {
    name: 'owners of a table, a function, a type and a schema',
    up: `ALTER TABLE fp_owned OWNER TO ${ROLE}; ALTER FUNCTION fp_f() OWNER TO ${ROLE}; ALTER TYPE fp_kind OWNER TO ${ROLE}; ALTER SCHEMA fp_schema OWNER TO ${ROLE}`,
    partialDown: 'ALTER TYPE fp_kind OWNER TO CURRENT_USER',
    rest: 'ALTER TABLE fp_owned OWNER TO CURRENT_USER; ALTER FUNCTION fp_f() OWNER TO CURRENT_USER; ALTER SCHEMA fp_schema OWNER TO CURRENT_USER',
    says: /^changes owner of function public\.fp_f\(\), owner of schema fp_schema, owner of table public\.fp_owned$/,
  },
  {
    name: 'privileges on a table, a column, a function, a type, a schema and a server',
    up: `GRANT SELECT ON fp_owned TO ${ROLE}; GRANT UPDATE (name) ON fp_owned TO ${ROLE}; REVOKE EXECUTE ON FUNCTION fp_f() FROM PUBLIC;` +
      ` REVOKE USAGE ON TYPE fp_kind FROM PUBLIC; GRANT USAGE ON SCHEMA fp_schema TO ${ROLE}; GRANT USAGE ON FOREIGN SERVER fp_s0 TO ${ROLE}`,
    partialDown: `REVOKE USAGE ON FOREIGN SERVER fp_s0 FROM ${ROLE}`,
    // Undone by the opposite statement: an explicit ACL that equals the default is no difference.
    rest: `REVOKE SELECT ON fp_owned FROM ${ROLE}; REVOKE UPDATE (name) ON fp_owned FROM ${ROLE}; GRANT EXECUTE ON FUNCTION fp_f() TO PUBLIC;` +
      ` GRANT USAGE ON TYPE fp_kind TO PUBLIC; REVOKE USAGE ON SCHEMA fp_schema FROM ${ROLE}`,
    says: /^changes privileges on column public\.fp_owned\.name, privileges on enum public\.fp_kind, privileges on function public\.fp_f\(\), privileges on schema fp_schema, privileges on table public\.fp_owned$/,
  },
  {
    name: 'default privileges',
    up: `ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ${ROLE}; ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`,
    partialDown: 'ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC',
    rest: `ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM ${ROLE}`,
    says: /^leaves default privileges for role \S+ in schema public on tables$/,
  },
  {
    name: 'comments on a table, a column, a function and an operator',
    up: "COMMENT ON TABLE fp_owned IS 'after'; COMMENT ON COLUMN fp_owned.name IS 'the name'; COMMENT ON FUNCTION fp_f() IS 'one'; COMMENT ON OPERATOR === (int, int) IS 'eq'",
    partialDown: 'COMMENT ON OPERATOR === (int, int) IS NULL',
    rest: "COMMENT ON TABLE fp_owned IS 'before'; COMMENT ON COLUMN fp_owned.name IS NULL; COMMENT ON FUNCTION fp_f() IS NULL",
    says: /^leaves comment on column public\.fp_owned\.name, comment on function public\.fp_f\(\); changes comment on table public\.fp_owned$/,
  },
];

describe('schema fingerprint: object kinds a down can forget', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const read = fingerprintReader(scope);

  // The reader's cached read must be the full read, every time.
  async function fingerprint(): Promise<SchemaFingerprint> {
    const fp = await read(client);
    assert.equal(fingerprintDigest(fp), fingerprintDigest(await readFingerprint(client, scope)), 'the cached read differs from a full read');
    return fp;
  }

  before(async () => {
    await adminQuery(`CREATE ROLE ${ROLE} NOLOGIN`);
    await adminQuery(`CREATE ROLE ${READER} LOGIN PASSWORD '${READER_PASSWORD}'`);
    db = await createTestDatabase('fingerprint_kinds');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(PRELUDE);
  });

  after(async () => {
    await client?.end();
    await db?.drop();
    await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`);
    await adminQuery(`DROP ROLE IF EXISTS ${READER}`);
  });

  for (const c of CASES) {
    test(`${c.name}: a down that forgets it is named; the whole down restores the fingerprint`, async () => {
      const start = await fingerprint();
      await client.query(c.up);
      const up = await fingerprint();
      assert.notEqual(diffFingerprints(start, up).size, 0, 'the up shows');
      if (c.partialDown) await client.query(c.partialDown);
      const partial = describeDiff(diffFingerprints(start, await fingerprint()).values());
      assert.match(diffSentence(partial), c.says);
      await client.query(c.rest);
      const restored = diffFingerprints(start, await fingerprint());
      assert.deepEqual([...restored.keys()], [], 'the whole down leaves nothing');
    });
  }

  test('a table an up creates with grants, a comment and another owner is one object to a down that forgets it', async () => {
    const start = await fingerprint();
    await client.query(`CREATE TABLE fp_new (id int, note text); GRANT SELECT (note) ON fp_new TO ${ROLE}; GRANT SELECT ON fp_new TO PUBLIC;` +
      ` COMMENT ON TABLE fp_new IS 'new'; COMMENT ON COLUMN fp_new.note IS 'n'; ALTER TABLE fp_new OWNER TO ${ROLE};` +
      ` CREATE FUNCTION fp_g() RETURNS int LANGUAGE sql AS 'SELECT 2'; COMMENT ON FUNCTION fp_g() IS 'g'; REVOKE ALL ON FUNCTION fp_g() FROM PUBLIC`);
    assert.equal(diffSentence(describeDiff(diffFingerprints(start, await fingerprint()).values())), 'leaves function public.fp_g(), table public.fp_new');
    await client.query('DROP TABLE fp_new; DROP FUNCTION fp_g()');
    assert.equal(diffFingerprints(start, await fingerprint()).size, 0);
  });

  test("option values (a server's, a user mapping's password) are never in the rows nor the words, only their names and a hash", async () => {
    const start = await fingerprint();
    await client.query(CASES.find((c) => c.name.startsWith('a foreign-data wrapper'))!.up);
    const fp = await fingerprint();
    const rows = JSON.stringify(fingerprintRows(fp));
    assert.ok(!rows.includes(SERVER_PASSWORD) && !rows.includes(MAPPING_PASSWORD), 'no password in the rows');
    const server = fp.get('server fp_s')!;
    assert.match(server.definition, /^wrapper fp_w type pg version 15 options host,password sha256:[0-9a-f]{64}$/);
    assert.match(fp.get('user mapping for public on server fp_s')!.definition, /^options password,user sha256:[0-9a-f]{64}$/);
    assert.match(fp.get('server fp_s0')!.definition, /sha256:/);
    const sentence = diffSentence(describeDiff(diffFingerprints(start, fp).values()));
    assert.ok(!sentence.includes(SERVER_PASSWORD) && !sentence.includes(MAPPING_PASSWORD));
    await client.query('DROP FOREIGN DATA WRAPPER fp_w CASCADE');
  });

  test('built-in casts, extension members and the objects of pg_catalog are not in it; a role without superuser reads it', async () => {
    // citext brings casts, operators, operator classes and families of its own.
    await client.query('CREATE EXTENSION citext');
    const fp = await fingerprint();
    const kinds = fingerprintRows(fp).map((r) => `${r.kind} ${r.identity}`);
    assert.deepEqual(kinds.filter((k) => k.startsWith('cast ')), [], 'no cast of initdb nor of the extension');
    assert.deepEqual(kinds.filter((k) => k.includes('citext')), ['comment extension citext', 'extension citext', 'owner extension citext'], 'the extension stands for its members');
    assert.ok(!kinds.some((k) => /pg_catalog|information_schema/.test(k)), kinds.filter((k) => /pg_catalog|information_schema/.test(k)).join('\n'));
    // pg_user_mapping is the superuser's alone; the reader goes through pg_user_mappings.
    const reader = new pg.Client({ connectionString: (() => { const u = new URL(db.url); u.username = READER; u.password = READER_PASSWORD; return u.toString(); })() });
    await reader.connect();
    try {
      const seen = await readFingerprint(reader, scope);
      assert.ok(seen.has('server fp_s0') && seen.has('operator public.===(integer,integer)'));
    } finally {
      await reader.end();
      await client.query('DROP EXTENSION citext');
    }
  });

  test('a baseline of format 1 is compared in its own kinds only', () => {
    const rows = new Map([
      ['table public.t', { kind: 'table', identity: 'public.t', parent: null, definition: 'r p' }],
      ['owner table public.t', { kind: 'owner', identity: 'table public.t', parent: 'public.t', definition: 'alice' }],
      ['cast (text AS public.k)', { kind: 'cast', identity: '(text AS public.k)', parent: null, definition: 'with inout explicit' }],
    ]);
    assert.deepEqual([...asOfFormat(rows, 1).keys()], ['table public.t']);
    assert.equal(asOfFormat(rows, 2), rows);
  });
});
