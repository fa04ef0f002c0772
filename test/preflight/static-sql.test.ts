// Reading a migration's SQL without running it (for the migrations a failed
// rehearsal never reached), and naming what a down leaves behind.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeDiff, diffFingerprints, diffSentence, fingerprintFromRows } from '../../services/migrations/schema-fingerprint.js';
import { staticSqlOf } from '../../services/preflight/rehearsal/static-sql.js';
import { ownDownDiff } from '../../services/preflight/rehearsal/reversibility.js';

describe('static SQL of a migration file', () => {
  test('.sql: the up section only', async () => {
    const read = await staticSqlOf('1_x.sql', '-- Up Migration\nCREATE TABLE a (id int);\n-- Down Migration\nDROP TABLE a;\n');
    assert.equal(read.complete, true);
    assert.equal(read.statements.length, 1);
    assert.match(read.statements[0]!, /CREATE TABLE a/);
    assert.doesNotMatch(read.statements[0]!, /DROP TABLE/);
  });

  test('every way of exporting up: CommonJS, ESM function and const, module.exports object, TypeScript', async () => {
    const forms: Array<[string, string]> = [
      ['1_a.js', "exports.up = (pgm) => { pgm.sql('SELECT 1'); };\nexports.down = (pgm) => { pgm.sql('SELECT 2'); };"],
      ['1_b.js', "module.exports.up = function (pgm) { pgm.sql(`SELECT 1`); };"],
      ['1_c.js', "module.exports = { up(pgm) { pgm.sql('SELECT 1'); }, down: (pgm) => { pgm.sql('SELECT 2'); } };"],
      ['1_d.mjs', "export async function up(pgm) { pgm.sql('SELECT 1'); }\nexport async function down(pgm) { pgm.sql('SELECT 2'); }"],
      ['1_e.ts', "import type { MigrationBuilder } from 'node-pg-migrate';\nexport const up = async (db: MigrationBuilder): Promise<void> => { db.sql('SELECT 1'); };"],
    ];
    for (const [file, text] of forms) assert.deepEqual(await staticSqlOf(file, text), { statements: ['SELECT 1'], transactional: true, complete: true }, file);
  });

  test('what cannot be read is said: builder calls, computed strings; noTransaction is seen', async () => {
    const builder = await staticSqlOf('1_a.js', "exports.up = (pgm) => { pgm.createTable('t', { id: 'id' }); pgm.sql('SELECT 1'); };");
    assert.deepEqual(builder, { statements: ['SELECT 1'], transactional: true, complete: false });
    const computed = await staticSqlOf('1_b.js', 'const t = "x";\nexports.up = (pgm) => { pgm.sql(`DROP TABLE ${t}`); };');
    assert.deepEqual(computed, { statements: [], transactional: true, complete: false });
    const concurrent = await staticSqlOf('1_c.js', "exports.up = (pgm) => { pgm.noTransaction(); pgm.sql('CREATE INDEX CONCURRENTLY i ON t (a)'); };");
    assert.deepEqual(concurrent, { statements: ['CREATE INDEX CONCURRENTLY i ON t (a)'], transactional: false, complete: true });
    assert.equal((await staticSqlOf('1_d.js', 'module.exports = require("./shared");')).complete, false, 'no up function to read');
  });
});

describe('what a down leaves behind', () => {
  const row = (kind: string, identity: string, parent: string | null = null, definition = '') => ({ kind, identity, parent, definition });
  const before = fingerprintFromRows([row('table', 'public.users'), row('column', 'public.users.email', 'public.users', 'text')]);

  test('a table left is named once, its columns and indexes folded into it; a removed column and a changed one are named', () => {
    const after = fingerprintFromRows([
      row('table', 'public.users'), row('column', 'public.users.email', 'public.users', 'character varying(200)'),
      row('table', 'public.audit_log'), row('column', 'public.audit_log.id', 'public.audit_log', 'bigint'),
      row('index', 'public.audit_log_pkey', 'public.audit_log', 'CREATE UNIQUE INDEX ...'),
      row('index', 'public.users_email_idx', 'public.users', 'CREATE INDEX ...'),
    ]);
    const d = describeDiff(diffFingerprints(before, after).values());
    assert.deepEqual(d, { leaves: ['index public.users_email_idx', 'table public.audit_log'], removes: [], changes: ['column public.users.email'] });
    assert.equal(diffSentence(d), 'leaves index public.users_email_idx, table public.audit_log; changes column public.users.email');
    const gone = describeDiff(diffFingerprints(before, fingerprintFromRows([row('table', 'public.users')])).values());
    assert.deepEqual(gone.removes, ['column public.users.email']);
  });

  test('what a later migration\'s down already left is not charged to an earlier one', () => {
    const later = diffFingerprints(before, fingerprintFromRows([...before.values(), row('table', 'public.audit_log')]));
    const earlier = diffFingerprints(before, fingerprintFromRows([...before.values(), row('table', 'public.audit_log')]));
    assert.equal(ownDownDiff(earlier, later), null);
    const own = diffFingerprints(before, fingerprintFromRows([...before.values(), row('table', 'public.audit_log'), row('enum', 'public.kind', null, 'a')]));
    assert.deepEqual(ownDownDiff(own, later), { leaves: ['enum public.kind'], removes: [], changes: [] });
  });
});
