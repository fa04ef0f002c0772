import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyAcknowledgements, lintMigration, splitStatements, type LintFinding, type LintInput } from '../../services/preflight/sql-analysis/index.js';

const MIGRATION = '1700000000800_add-power';
const EXISTING: ReadonlySet<string> = new Set(['public.users', 'public.orders', 'billing.invoices']);

function lint(statements: string | string[], options: Partial<LintInput> = {}): Promise<LintFinding[]> {
  return lintMigration({
    migration: MIGRATION,
    statements: Array.isArray(statements) ? statements : [statements],
    transactional: true,
    existingTables: EXISTING,
    source: '',
    ...options,
  });
}

function onlyFinding(findings: LintFinding[], rule: string): LintFinding {
  const matching = findings.filter((f) => f.rule === rule);
  assert.equal(matching.length, 1, `expected one ${rule} finding, got ${JSON.stringify(findings, null, 2)}`);
  return matching[0] as LintFinding;
}

const rules = (findings: LintFinding[]) => findings.map((f) => f.rule);
const errorRules = (findings: LintFinding[]) => findings.filter((f) => f.severity === 'error').map((f) => f.rule);

interface RuleCase {
  rule: string;
  severity: 'error' | 'warning';
  bad: string;
  badTransactional?: boolean;
  /** Must name the safe alternative. */
  message: RegExp;
  safe: string;
  safeTransactional?: boolean;
}

// One offending statement and its safe twin per rule; the twin must not fire
// the rule and must not fail preflight with any other error either.
const CASES: RuleCase[] = [
  {
    rule: 'require-concurrent-index-creation', severity: 'error',
    bad: 'CREATE INDEX users_email_idx ON users (email)',
    message: /CREATE INDEX CONCURRENTLY in a migration that calls pgm\.noTransaction\(\)/,
    safe: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email)', safeTransactional: false,
  },
  {
    rule: 'require-concurrent-index-deletion', severity: 'error',
    bad: 'DROP INDEX users_email_idx',
    message: /DROP INDEX CONCURRENTLY.*pgm\.noTransaction\(\)/,
    safe: 'DROP INDEX CONCURRENTLY IF EXISTS users_email_idx', safeTransactional: false,
  },
  {
    rule: 'ban-concurrent-index-creation-in-transaction', severity: 'error',
    bad: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email)', badTransactional: true,
    message: /call pgm\.noTransaction\(\)/,
    safe: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email)', safeTransactional: false,
  },
  {
    rule: 'adding-not-nullable-field', severity: 'error',
    bad: 'ALTER TABLE users ALTER COLUMN email SET NOT NULL',
    message: /CHECK \(email IS NOT NULL\) NOT VALID.*VALIDATE.*SET NOT NULL/,
    safe: 'ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID',
  },
  {
    rule: 'adding-required-field', severity: 'error',
    bad: 'ALTER TABLE users ADD COLUMN power integer NOT NULL',
    message: /nullable or with a default, backfill, then enforce/,
    safe: 'ALTER TABLE users ADD COLUMN power integer NOT NULL DEFAULT 0',
  },
  {
    rule: 'adding-field-with-volatile-default', severity: 'error',
    bad: 'ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()',
    message: /without a default.*SET DEFAULT.*backfill existing rows in batches/,
    safe: 'ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()',
  },
  {
    rule: 'changing-column-type', severity: 'error',
    bad: 'ALTER TABLE users ALTER COLUMN id TYPE bigint',
    message: /Add a new column.*backfill.*swap/,
    safe: 'ALTER TABLE users ADD COLUMN id_new bigint',
  },
  {
    rule: 'constraint-missing-not-valid', severity: 'error',
    bad: 'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)',
    message: /NOT VALID, then VALIDATE CONSTRAINT in a separate migration/,
    safe: 'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID',
  },
  {
    rule: 'disallowed-unique-constraint', severity: 'error',
    bad: 'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)',
    message: /CREATE UNIQUE INDEX CONCURRENTLY.*ADD CONSTRAINT \.\.\. UNIQUE USING INDEX/,
    safe: 'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx',
  },
  {
    rule: 'ban-drop-column', severity: 'error',
    bad: 'ALTER TABLE users DROP COLUMN legacy_flag',
    message: /Stop using the column in a release first/,
    safe: 'ALTER TABLE users ALTER COLUMN legacy_flag DROP NOT NULL',
  },
  {
    rule: 'ban-drop-table', severity: 'error',
    bad: 'DROP TABLE orders',
    message: /Stop using the table in a release first/,
    safe: 'DROP VIEW IF EXISTS orders_summary',
  },
  {
    rule: 'ban-drop-database', severity: 'error',
    bad: 'DROP DATABASE legacy',
    message: /does not belong in a migration/,
    safe: "ALTER DATABASE legacy SET lock_timeout = '5s'",
  },
  {
    rule: 'renaming-column', severity: 'error',
    bad: 'ALTER TABLE users RENAME COLUMN name TO full_name',
    message: /add a new column, dual-write.*drop the old one in a later release/i,
    safe: 'ALTER TABLE users ADD COLUMN full_name text',
  },
  {
    rule: 'renaming-table', severity: 'error',
    bad: 'ALTER TABLE users RENAME TO accounts',
    message: /Create the new table.*drop the old name in a later release/,
    safe: 'ALTER INDEX users_email_idx RENAME TO users_email_key_idx',
  },
  {
    rule: 'ban-truncate-cascade', severity: 'error',
    bad: 'TRUNCATE orders CASCADE',
    message: /List the tables to truncate explicitly/,
    safe: 'TRUNCATE orders',
  },
  {
    rule: 'prefer-robust-stmts', severity: 'warning',
    bad: 'ALTER TABLE users ADD COLUMN power integer', badTransactional: false,
    message: /partial failure cannot be re-run.*IF \[NOT\] EXISTS/,
    safe: 'ALTER TABLE users ADD COLUMN IF NOT EXISTS power integer', safeTransactional: false,
  },
  {
    rule: 'create-extension', severity: 'warning',
    bad: 'CREATE EXTENSION IF NOT EXISTS pgcrypto',
    message: /CREATE privilege on the database.*superuser.*preflight checks availability and privilege/,
    safe: 'ALTER EXTENSION pgcrypto UPDATE',
  },
];

describe('lint rules: each fires on its bad example and stays quiet on its safe twin', () => {
  for (const c of CASES) {
    describe(c.rule, () => {
      test(`fires: ${c.bad}`, async () => {
        const finding = onlyFinding(await lint(c.bad, { transactional: c.badTransactional ?? true }), c.rule);
        assert.equal(finding.severity, c.severity);
        assert.equal(finding.migration, MIGRATION);
        assert.equal(finding.statement, c.bad);
        assert.match(finding.message, c.message);
        assert.equal(finding.acknowledged, null);
      });
      test(`quiet: ${c.safe}`, async () => {
        const findings = await lint(c.safe, { transactional: c.safeTransactional ?? true });
        assert.ok(!rules(findings).includes(c.rule), JSON.stringify(findings));
        assert.deepEqual(errorRules(findings), []);
      });
    });
  }
});

describe('lint rule details', () => {
  test('a CHECK constraint without NOT VALID fires constraint-missing-not-valid too', async () => {
    const finding = onlyFinding(await lint('ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0)'), 'constraint-missing-not-valid');
    assert.match(finding.message, /NOT VALID/);
  });

  test('VALIDATE CONSTRAINT in a later migration is fine', async () => {
    assert.deepEqual(await lint('ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk'), []);
  });

  test('VALIDATE in the same transaction as ADD ... NOT VALID fires constraint-missing-not-valid', async () => {
    const findings = await lint([
      'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID',
      'ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk',
    ]);
    const finding = onlyFinding(findings, 'constraint-missing-not-valid');
    assert.equal(finding.statement, 'ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk');
    assert.match(finding.message, /separate migration/);
  });

  test('ADD PRIMARY KEY without USING INDEX fires disallowed-unique-constraint; with it, nothing', async () => {
    onlyFinding(await lint('ALTER TABLE orders ADD PRIMARY KEY (id)'), 'disallowed-unique-constraint');
    assert.deepEqual(await lint('ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_id_idx'), []);
  });

  test('DROP INDEX CONCURRENTLY and REINDEX CONCURRENTLY in a transaction fire ban-concurrent-index-creation-in-transaction', async () => {
    for (const sql of ['DROP INDEX CONCURRENTLY IF EXISTS users_email_idx', 'REINDEX INDEX CONCURRENTLY users_email_idx']) {
      const finding = onlyFinding(await lint(sql), 'ban-concurrent-index-creation-in-transaction');
      assert.equal(finding.statement, sql);
    }
    assert.deepEqual(await lint('REINDEX INDEX CONCURRENTLY users_email_idx', { transactional: false }), []);
  });

  test('ADD COLUMN NOT NULL without a default is reported once, as adding-required-field', async () => {
    assert.deepEqual(rules(await lint('ALTER TABLE users ADD COLUMN power integer NOT NULL')), ['adding-required-field']);
  });

  test('stable defaults (now(), CURRENT_TIMESTAMP, constants, casts) are fine; serial and unknown functions are not', async () => {
    const stable = [
      'ALTER TABLE users ADD COLUMN a timestamptz DEFAULT CURRENT_TIMESTAMP',
      "ALTER TABLE users ADD COLUMN b date NOT NULL DEFAULT CURRENT_DATE",
      "ALTER TABLE users ADD COLUMN c jsonb NOT NULL DEFAULT '{}'::jsonb",
      "ALTER TABLE users ADD COLUMN d timestamptz DEFAULT now() + interval '1 day'",
      'ALTER TABLE users ADD COLUMN e integer DEFAULT NULL',
    ];
    for (const sql of stable) assert.deepEqual(await lint(sql), [], sql);
    onlyFinding(await lint('ALTER TABLE users ADD COLUMN seq bigserial'), 'adding-field-with-volatile-default');
    onlyFinding(await lint('ALTER TABLE users ADD COLUMN r float8 DEFAULT random()'), 'adding-field-with-volatile-default');
    const unknown = onlyFinding(await lint('ALTER TABLE users ADD COLUMN s text DEFAULT my_schema.make_slug()'), 'adding-field-with-volatile-default');
    assert.match(unknown.message, /make_slug\(\).*cannot verify/);
  });

  test('schema-qualified tables are matched against existingTables', async () => {
    onlyFinding(await lint('CREATE INDEX invoices_due_idx ON billing.invoices (due_at)'), 'require-concurrent-index-creation');
    assert.deepEqual(await lint('CREATE INDEX invoices_due_idx ON public.invoices (due_at)'), []);
  });

  test('prefer-robust-stmts covers CREATE TABLE/INDEX and DROP TABLE/INDEX/COLUMN, only outside a transaction', async () => {
    const fragile = [
      'CREATE TABLE power (id integer)',
      'CREATE INDEX CONCURRENTLY users_email_idx ON users (email)',
      'DROP INDEX CONCURRENTLY users_email_idx',
    ];
    for (const sql of fragile) {
      const finding = onlyFinding(await lint(sql, { transactional: false }), 'prefer-robust-stmts');
      assert.equal(finding.statement, sql);
    }
    const dropColumn = await lint('ALTER TABLE users DROP COLUMN legacy_flag', { transactional: false });
    assert.deepEqual(rules(dropColumn).sort(), ['ban-drop-column', 'prefer-robust-stmts']);
    for (const sql of fragile) assert.ok(!rules(await lint(sql, { transactional: true })).includes('prefer-robust-stmts'));
  });
});

describe('tables created in the same migration', () => {
  test('every existing-table rule stays quiet for a table the migration creates', async () => {
    const findings = await lint([
      'CREATE TABLE power (id integer, user_id integer, name text, legacy text)',
      'CREATE INDEX power_user_idx ON power (user_id)',
      'ALTER TABLE power ADD COLUMN level integer NOT NULL',
      'ALTER TABLE power ADD COLUMN token uuid DEFAULT gen_random_uuid()',
      'ALTER TABLE power ALTER COLUMN name SET NOT NULL',
      'ALTER TABLE power ALTER COLUMN id TYPE bigint',
      'ALTER TABLE power ADD CONSTRAINT power_user_fk FOREIGN KEY (user_id) REFERENCES users (id)',
      'ALTER TABLE power ADD CONSTRAINT power_name_key UNIQUE (name)',
      'ALTER TABLE power DROP COLUMN legacy',
      'ALTER TABLE power RENAME COLUMN name TO title',
      'DROP INDEX power_user_idx',
    ]);
    assert.deepEqual(findings, []);
  });

  test('a table missing from existingTables is treated as new', async () => {
    assert.deepEqual(await lint('CREATE INDEX widgets_name_idx ON widgets (name)'), []);
  });

  test('a table dropped and re-created in the migration counts as new afterwards', async () => {
    const findings = await lint(['DROP TABLE orders', 'CREATE TABLE orders (id integer)', 'CREATE INDEX orders_id_idx ON orders (id)']);
    assert.deepEqual(rules(findings), ['ban-drop-table']);
  });

  test('CREATE TABLE IF NOT EXISTS of an existing table does not make it new', async () => {
    const findings = await lint(['CREATE TABLE IF NOT EXISTS users (id integer)', 'CREATE INDEX users_email_idx ON users (email)']);
    assert.deepEqual(rules(findings), ['require-concurrent-index-creation']);
  });

  test('a renamed existing table is still existing under its new name', async () => {
    const findings = await lint(['ALTER TABLE users RENAME TO accounts', 'ALTER TABLE accounts ALTER COLUMN id TYPE bigint']);
    assert.deepEqual(rules(findings), ['renaming-table', 'changing-column-type']);
  });
});

describe('acknowledgements', () => {
  const drop = 'ALTER TABLE users DROP COLUMN legacy_flag';
  const fileAck = (reason: string) => ({ reason, by: null, at: null, via: 'file' });

  test('a SQL comment with a reason acknowledges the rule: kept, downgraded to warning', async () => {
    const source = `-- lint-ack: ban-drop-column unused since release 41 (PR #812)\n${drop};\n`;
    const finding = onlyFinding(await lint(drop, { source }), 'ban-drop-column');
    assert.equal(finding.severity, 'warning');
    assert.deepEqual(finding.acknowledged, fileAck('unused since release 41 (PR #812)'));
  });

  test('an ack covers the next statement only: acking the drop of column a leaves the drop of column b an error', async () => {
    const source = [
      '-- Up Migration',
      '-- lint-ack: ban-drop-column a is unused since release 41',
      'ALTER TABLE users DROP COLUMN a;',
      'ALTER TABLE users DROP COLUMN b;',
    ].join('\n');
    const findings = await lint(source, { source, file: '1700000000800_drop.sql' });
    const [a, b] = findings.filter((f) => f.rule === 'ban-drop-column');
    assert.match(a?.statement ?? '', /DROP COLUMN a/);
    assert.deepEqual([a?.severity, a?.acknowledged], ['warning', fileAck('a is unused since release 41')]);
    assert.match(b?.statement ?? '', /DROP COLUMN b/);
    assert.deepEqual([b?.severity, b?.acknowledged], ['error', null], 'the ack does not reach the second statement');
  });

  test('an ack naming an object covers the findings on that object, wherever it sits in the file', async () => {
    const source = [
      '-- lint-ack: ban-drop-column(users.b) b is unused since release 41',
      'ALTER TABLE users DROP COLUMN a;',
      'ALTER TABLE users DROP COLUMN b;',
    ].join('\n');
    const findings = (await lint(source, { source, file: 'x.sql' })).filter((f) => f.rule === 'ban-drop-column');
    assert.deepEqual(findings.map((f) => [/DROP COLUMN (\w)/.exec(f.statement)?.[1], f.severity]), [['a', 'error'], ['b', 'warning']]);
    // Quoted and schema-qualified spellings name the same object.
    for (const object of ['"users"."b"', 'public.users.b']) {
      const other = (await lint(source.replace('users.b', object), { source: source.replace('users.b', object), file: 'x.sql' })).filter((f) => f.rule === 'ban-drop-column');
      assert.deepEqual(other.map((f) => f.severity), ['error', 'warning'], object);
    }
  });

  test('in JS an ack covers the next pgm call; SQL a builder generated is covered only by an ack naming the object', async () => {
    const source = [
      'export const up = (pgm) => {',
      '  // lint-ack: ban-drop-column both columns unused since release 41',
      "  pgm.dropColumns('users', ['a', 'b']);",
      '  // lint-ack: ban-drop-column(users.c) c is unused since release 41',
      "  pgm.dropColumns('users', ['c']);",
      '  // lint-ack: renaming-column the old name is read nowhere',
      "  pgm.sql('ALTER TABLE users RENAME COLUMN d TO e');",
      "  pgm.sql('ALTER TABLE users RENAME COLUMN f TO g');",
      '};',
    ].join('\n');
    const findings = await lint(
      ['ALTER TABLE "users" DROP "a", DROP "b"', 'ALTER TABLE "users" DROP "c"', 'ALTER TABLE users RENAME COLUMN d TO e', 'ALTER TABLE users RENAME COLUMN f TO g'],
      { source },
    );
    assert.deepEqual(findings.map((f) => [f.rule, f.severity]), [
      ['ban-drop-column', 'error'], ['ban-drop-column', 'error'], // not found in the file: a positional ack cannot reach them
      ['ban-drop-column', 'warning'],
      ['renaming-column', 'warning'],
      ['renaming-column', 'error'],
    ]);
  });

  test('an ack inside a one-line pgm.sql() call keeps only the reason and covers the call after it', async () => {
    const source = `pgm.sql('-- lint-ack: ban-drop-column unused since release 41'); pgm.sql('${drop}');`;
    const finding = onlyFinding(await lint(drop, { source }), 'ban-drop-column');
    assert.deepEqual(finding.acknowledged, fileAck('unused since release 41'));
  });

  test('applyAcknowledgements applies each migration file\'s acks to findings from outside the linter', async () => {
    const failed = { rule: 'rehearsal-failed', severity: 'error' as const, migration: MIGRATION, statement: 'UPDATE accounts SET x = 1 / 0', message: 'x', acknowledged: null };
    const other = { ...failed, migration: '1700000000900_other' };
    const global = { ...failed, migration: null };
    const source = "export const up = (pgm) => {\n  // lint-ack: rehearsal-failed fails only on the empty copy\n  pgm.sql('UPDATE accounts SET x = 1 / 0');\n};";
    const sources = new Map([[MIGRATION, source], ['1700000000900_other', '']]);
    const [acked, notAcked, noMigration] = await applyAcknowledgements([failed, other, global], sources);
    assert.deepEqual([acked?.severity, acked?.acknowledged], ['warning', fileAck('fails only on the empty copy')]);
    assert.deepEqual([notAcked?.severity, notAcked?.acknowledged], ['error', null]);
    assert.deepEqual([noMigration?.severity, noMigration?.acknowledged], ['error', null]);
    // An observed finding (a command tag, no statement to find) only by an ack naming its relation.
    const observed = { ...failed, rule: 'observed-table-rewrite', statement: 'ALTER TABLE', relation: 'public.accounts' };
    const [positional] = await applyAcknowledgements([observed], new Map([[MIGRATION, '// lint-ack: observed-table-rewrite small table\npgm.sql("x")']]));
    assert.equal(positional?.acknowledged, null);
    const [named] = await applyAcknowledgements([observed], new Map([[MIGRATION, '// lint-ack: observed-table-rewrite(accounts) small table']]));
    assert.deepEqual(named?.acknowledged, fileAck('small table'));
  });

  test('an ack without a reason does not count', async () => {
    for (const source of ['-- lint-ack: ban-drop-column', '// lint-ack: ban-drop-column   ']) {
      const finding = onlyFinding(await lint(drop, { source }), 'ban-drop-column');
      assert.deepEqual([finding.severity, finding.acknowledged], ['error', null]);
    }
  });
});

describe('statement splitting and syntax errors', () => {
  test('a multi-statement string is split and each finding quotes its own statement', async () => {
    const sql = [
      'CREATE INDEX users_email_idx ON users (email);',
      '-- the next one is the real problem',
      "ALTER TABLE users ADD COLUMN note text DEFAULT 'héllo';",
      'ALTER TABLE users ALTER COLUMN id TYPE bigint;',
    ].join('\n');
    const findings = await lint(sql);
    assert.deepEqual(findings.map((f) => [f.rule, f.statement]), [
      ['require-concurrent-index-creation', 'CREATE INDEX users_email_idx ON users (email)'],
      ['changing-column-type', 'ALTER TABLE users ALTER COLUMN id TYPE bigint'],
    ]);
  });

  test('splitStatements keeps the text of each statement, comments and non-ASCII text included', async () => {
    const parts = await splitStatements("/* setup */ SELECT 'ünïcode'; -- next\nUPDATE users SET a = 1 WHERE id = 2");
    assert.deepEqual(parts.map((p) => p.text), ["SELECT 'ünïcode'", 'UPDATE users SET a = 1 WHERE id = 2']);
    assert.deepEqual(parts.map((p) => Object.keys(p.node)), [['SelectStmt'], ['UpdateStmt']]);
    assert.deepEqual(await splitStatements('  -- nothing to run\n'), []);
  });

  test('a statement that does not parse yields syntax-error and linting continues', async () => {
    const findings = await lint(['ALTER TABLE users ADD COLUMN', 'DROP TABLE orders']);
    const syntax = onlyFinding(findings, 'syntax-error');
    assert.equal(syntax.severity, 'error');
    assert.equal(syntax.statement, 'ALTER TABLE users ADD COLUMN');
    assert.match(syntax.message, /syntax error/);
    onlyFinding(findings, 'ban-drop-table');
  });

  test('long statements are quoted shortened', async () => {
    const columns = Array.from({ length: 80 }, (_, i) => `DROP COLUMN legacy_column_${i}`).join(', ');
    const [finding] = await lint(`ALTER TABLE users ${columns}`);
    assert.ok(finding && finding.statement.length <= 500 && finding.statement.endsWith('…'));
  });
});
