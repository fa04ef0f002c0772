import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lintMigration, type LintFinding, type LintInput } from '../../services/preflight/sql-analysis/index.js';

// The rules beyond the first squawk-style set: one offending migration and its
// safe twin per rule. Existing tables: users, orders, events (partitioned),
// order_totals (a materialized view, known from the catalog facts).

const EXISTING: ReadonlySet<string> = new Set(['public.users', 'public.orders', 'public.events']);
const FACTS = { columnTypes: new Map(), notNullChecks: new Map(), functions: new Map(), materializedViews: new Set(['public.order_totals']) };

function lint(statements: string | string[], options: Partial<LintInput> = {}): Promise<LintFinding[]> {
  return lintMigration({
    migration: '1700000001000_more',
    statements: Array.isArray(statements) ? statements : [statements],
    transactional: true,
    existingTables: EXISTING,
    facts: FACTS,
    source: '',
    ...options,
  });
}

const rules = (findings: LintFinding[]) => findings.map((f) => f.rule);

function only(findings: LintFinding[], rule: string): LintFinding {
  const matching = findings.filter((f) => f.rule === rule);
  assert.equal(matching.length, 1, `expected one ${rule}, got ${JSON.stringify(findings, null, 2)}`);
  return matching[0]!;
}

interface Case {
  rule: string;
  severity: 'error' | 'warning';
  bad: string | string[];
  badTransactional?: boolean;
  message: RegExp;
  safe: string | string[];
  safeTransactional?: boolean;
}

const CASES: Case[] = [
  {
    rule: 'adding-foreign-key-constraint', severity: 'error',
    bad: 'ALTER TABLE orders ADD COLUMN buyer_id bigint REFERENCES users (id)',
    message: /Add the column without REFERENCES, then ADD CONSTRAINT \.\.\. FOREIGN KEY \(buyer_id\).*NOT VALID/,
    safe: 'ALTER TABLE orders ADD COLUMN buyer_id bigint',
  },
  {
    rule: 'adding-exclusion-constraint', severity: 'error',
    bad: 'ALTER TABLE orders ADD CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&)',
    message: /cannot attach an exclusion constraint to an index built CONCURRENTLY/,
    safe: 'CREATE TABLE bookings (during tstzrange, EXCLUDE USING gist (during WITH &&))',
  },
  {
    rule: 'ban-drop-not-null', severity: 'warning',
    bad: 'ALTER TABLE users ALTER COLUMN email DROP NOT NULL',
    message: /lets NULLs into a column/,
    safe: 'ALTER TABLE users ALTER COLUMN email SET DEFAULT \'\'',
  },
  {
    rule: 'require-concurrent-reindex', severity: 'error',
    bad: 'REINDEX TABLE users',
    message: /Use REINDEX \.\.\. CONCURRENTLY in a migration that calls pgm\.noTransaction\(\)/,
    safe: 'REINDEX TABLE CONCURRENTLY users', safeTransactional: false,
  },
  {
    rule: 'require-concurrent-partition-detach', severity: 'error',
    bad: 'ALTER TABLE events DETACH PARTITION events_2023',
    message: /DETACH PARTITION \.\.\. CONCURRENTLY/,
    safe: 'ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY', safeTransactional: false,
  },
  {
    rule: 'require-concurrent-refresh', severity: 'error',
    bad: 'REFRESH MATERIALIZED VIEW order_totals',
    message: /REFRESH MATERIALIZED VIEW CONCURRENTLY \(it needs a unique index/,
    safe: 'REFRESH MATERIALIZED VIEW CONCURRENTLY order_totals',
  },
  {
    rule: 'alter-enum-add-value', severity: 'error',
    bad: ["ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid'", "UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL"],
    message: /unsafe use of new value/,
    safe: ["ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid'", "UPDATE orders SET status = 'paid' WHERE paid_at IS NOT NULL"],
  },
  {
    rule: 'ban-vacuum-full', severity: 'error',
    bad: 'VACUUM FULL orders', badTransactional: false,
    message: /pg_repack or pg_squeeze/,
    safe: 'VACUUM (ANALYZE) orders', safeTransactional: false,
  },
  {
    rule: 'cannot-run-in-transaction', severity: 'error',
    bad: 'VACUUM ANALYZE orders',
    message: /VACUUM cannot run inside a transaction block.*call pgm\.noTransaction\(\)/,
    safe: 'ANALYZE orders',
  },
  {
    rule: 'ban-cluster', severity: 'error',
    bad: 'CLUSTER orders USING orders_pkey',
    message: /rewrites the table and its indexes under an ACCESS EXCLUSIVE lock/,
    safe: 'ALTER TABLE orders CLUSTER ON orders_pkey',
  },
  {
    rule: 'ban-lock-table', severity: 'error',
    bad: 'LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE',
    message: /blocks every write on it until the migration's transaction ends/,
    safe: 'LOCK TABLE orders IN ROW EXCLUSIVE MODE',
  },
  {
    rule: 'ban-set-tablespace', severity: 'error',
    bad: 'ALTER TABLE orders SET TABLESPACE fast',
    message: /copies public\.orders block by block/,
    safe: "ALTER TABLE orders SET (fillfactor = 90)",
  },
  {
    rule: 'ban-set-logged-unlogged', severity: 'error',
    bad: 'ALTER TABLE orders SET UNLOGGED',
    message: /rewrites public\.orders under an ACCESS EXCLUSIVE lock/,
    safe: 'CREATE UNLOGGED TABLE scratch (id bigint)',
  },
  {
    rule: 'concurrently-in-multi-statement-query', severity: 'error',
    bad: "UPDATE users SET a = 0 WHERE a IS NULL; CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON users (a)", badTransactional: false,
    message: /one implicit transaction.*pgm\.sql\(\) call of its own/,
    safe: ['CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON users (a)', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS b_idx ON users (b)'], safeTransactional: false,
  },
  {
    rule: 'transaction-nesting', severity: 'error',
    bad: ['ALTER TABLE users ADD COLUMN power integer', 'COMMIT'],
    message: /ends that transaction early/,
    safe: 'ALTER TABLE users ADD COLUMN power integer',
  },
  {
    rule: 'ban-uncommitted-transaction', severity: 'error',
    bad: ['BEGIN', 'UPDATE users SET power = 0 WHERE id = 1'], badTransactional: false,
    message: /never commits/,
    safe: ['BEGIN', 'UPDATE users SET power = 0 WHERE id = 1', 'COMMIT'], safeTransactional: false,
  },
  {
    rule: 'ban-alter-domain-with-add-constraint', severity: 'error',
    bad: 'ALTER DOMAIN positive_int ADD CONSTRAINT positive CHECK (VALUE > 0)',
    message: /Add it NOT VALID/,
    safe: 'ALTER DOMAIN positive_int ADD CONSTRAINT positive CHECK (VALUE > 0) NOT VALID',
  },
  {
    rule: 'ban-create-domain-with-constraint', severity: 'warning',
    bad: 'CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0)',
    message: /Use a plain type with CHECK constraints on the columns/,
    safe: 'CREATE DOMAIN label AS text',
  },
  {
    rule: 'ban-duplicate-column-assignments', severity: 'error',
    bad: "UPDATE users SET name = 'a', name = 'b' WHERE id = 1",
    message: /Column "name" is assigned more than once/,
    safe: "UPDATE users SET name = 'b', title = 'c' WHERE id = 1",
  },
  {
    rule: 'identifier-too-long', severity: 'warning',
    bad: 'CREATE INDEX orders_customer_id_created_at_status_region_currency_channel_idx ON widgets (a)',
    message: /is 64 bytes; PostgreSQL keeps only the first 63/,
    safe: 'CREATE INDEX orders_customer_created_idx ON widgets (a)',
  },
];

describe('more lint rules: each fires on its bad example and stays quiet on its safe twin', () => {
  for (const c of CASES) {
    describe(c.rule, () => {
      test(`fires: ${String(c.bad)}`, async () => {
        const finding = only(await lint(c.bad, { transactional: c.badTransactional ?? true }), c.rule);
        assert.equal(finding.severity, c.severity);
        assert.match(finding.message, c.message);
        assert.ok(finding.message.endsWith(`See docs/rules/${c.rule}.md.`), finding.message);
      });
      test(`quiet: ${String(c.safe)}`, async () => {
        const findings = await lint(c.safe, { transactional: c.safeTransactional ?? true });
        assert.ok(!rules(findings).includes(c.rule), JSON.stringify(findings));
        assert.deepEqual(findings.filter((f) => f.severity === 'error').map((f) => f.rule), []);
      });
    });
  }

  test('the same statements on tables created in the migration are not flagged', async () => {
    const findings = await lint([
      'CREATE TABLE fresh (id bigint, during tstzrange, email text NOT NULL)',
      'ALTER TABLE fresh ADD COLUMN owner_id bigint REFERENCES users (id)',
      'ALTER TABLE fresh ADD CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&)',
      'ALTER TABLE fresh ALTER COLUMN email DROP NOT NULL',
      'REINDEX TABLE fresh',
      'CLUSTER fresh USING fresh_pkey',
      'LOCK TABLE fresh IN ACCESS EXCLUSIVE MODE',
      'ALTER TABLE fresh SET TABLESPACE fast',
      'ALTER TABLE fresh SET UNLOGGED',
      'CREATE MATERIALIZED VIEW fresh_totals AS SELECT count(*) FROM fresh',
      'REFRESH MATERIALIZED VIEW fresh_totals',
      'CREATE INDEX fresh_totals_idx ON fresh_totals (count)',
    ]);
    assert.deepEqual(findings, []);
  });
});

describe('rule details', () => {
  test('an index on an existing materialized view is flagged and says so', async () => {
    const finding = only(await lint('CREATE INDEX order_totals_day_idx ON order_totals (day)'), 'require-concurrent-index-creation');
    assert.match(finding.message, /on existing materialized view public\.order_totals/);
  });

  test('ALTER TYPE ... ADD VALUE in a transaction fails before PostgreSQL 12, not after', async () => {
    const old = only(await lint("ALTER TYPE order_status ADD VALUE 'refunded'", { serverMajor: 11 }), 'alter-enum-add-value');
    assert.match(old.message, /before PostgreSQL 12; the target runs 11/);
    assert.deepEqual(rules(await lint("ALTER TYPE order_status ADD VALUE 'refunded'", { serverMajor: 15 })), []);
    assert.deepEqual(rules(await lint("ALTER TYPE order_status ADD VALUE 'refunded'", { serverMajor: 11, transactional: false })), []);
  });

  test('BEGIN/COMMIT in a pgm.noTransaction() migration are fine in pairs; nested, stray or inside DO they are not', async () => {
    assert.deepEqual(rules(await lint(['BEGIN', 'UPDATE users SET a = 1 WHERE id = 1', 'COMMIT', 'BEGIN', 'SELECT 1', 'COMMIT'], { transactional: false })), []);
    assert.deepEqual(rules(await lint(['BEGIN', 'BEGIN', 'COMMIT'], { transactional: false })), ['transaction-nesting']);
    assert.deepEqual(rules(await lint(['SELECT 1', 'COMMIT'], { transactional: false })), ['transaction-nesting']);
    const inDo = only(await lint('DO $$ BEGIN UPDATE users SET a = 1 WHERE id = 1; COMMIT; END $$'), 'transaction-nesting');
    assert.match(inDo.message, /^Inside a DO block: COMMIT inside a DO block that runs in a transaction fails/);
  });

  test('two CONCURRENTLY statements in one pgm.sql() string are each reported', async () => {
    const findings = await lint('CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON users (a); CREATE INDEX CONCURRENTLY IF NOT EXISTS b_idx ON users (b)', { transactional: false });
    assert.deepEqual(findings.map((f) => [f.rule, f.statement]), [
      ['concurrently-in-multi-statement-query', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON users (a)'],
      ['concurrently-in-multi-statement-query', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS b_idx ON users (b)'],
    ]);
  });

  test('after a COMMIT in a noTransaction migration, CONCURRENTLY is allowed and VALIDATE no longer shares the ADD\'s lock', async () => {
    const findings = await lint([
      'BEGIN',
      'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID',
      'COMMIT',
      'ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk',
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_idx ON orders (user_id)',
    ], { transactional: false });
    assert.deepEqual(rules(findings).filter((r) => r !== 'prefer-robust-stmts'), []);
  });

  test('prefer-robust-stmts also covers DROP CONSTRAINT/TYPE and ADD CONSTRAINT, but not a re-add after DROP ... IF EXISTS or a temporary ON COMMIT DROP table', async () => {
    for (const sql of ['ALTER TABLE users DROP CONSTRAINT users_email_key', 'DROP TYPE mood', 'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx']) {
      only(await lint(sql, { transactional: false }), 'prefer-robust-stmts');
    }
    assert.deepEqual(rules(await lint([
      'ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_key',
      'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx',
      'CREATE TEMP TABLE scratch (id int) ON COMMIT DROP',
    ], { transactional: false })), []);
  });

  test('duplicate columns: CREATE TABLE, INSERT, views with inferred names; partial assignments are fine', async () => {
    for (const sql of ['CREATE TABLE t (a int, a text)', 'INSERT INTO users (a, a) VALUES (1, 2)', 'CREATE VIEW v AS SELECT 1, 2']) {
      only(await lint(sql), 'ban-duplicate-column-assignments');
    }
    assert.deepEqual(rules(await lint("UPDATE users SET address.city = 'x', address.zip = 'y' WHERE id = 1")), []);
  });

  test('style rules are off by default and fire as warnings when turned on', async () => {
    const sql = 'CREATE TABLE things (id serial, n smallint, code char(4), label varchar(20), at timestamp)';
    assert.deepEqual(await lint(sql), []);
    const on = { 'prefer-bigint-over-int': 'warning', 'prefer-bigint-over-smallint': 'warning', 'prefer-identity': 'warning', 'ban-char-field': 'warning', 'prefer-text-field': 'warning', 'prefer-timestamptz': 'warning', 'require-table-schema': 'warning' } as const;
    const findings = await lint(sql, { ruleLevels: on });
    assert.deepEqual(rules(findings).sort(), Object.keys(on).sort());
    assert.ok(findings.every((f) => f.severity === 'warning'));
  });

  test('an environment can raise a warning to an error and turn an error off', async () => {
    const raised = only(await lint('ALTER TABLE users ALTER COLUMN email DROP NOT NULL', { ruleLevels: { 'ban-drop-not-null': 'error' } }), 'ban-drop-not-null');
    assert.equal(raised.severity, 'error');
    assert.deepEqual(await lint('DROP TABLE orders', { ruleLevels: { 'ban-drop-table': 'off' } }), []);
  });

  test('the timeout rules, when on, fire once per migration and not after SET lock_timeout / statement_timeout', async () => {
    const on = { 'require-lock-timeout': 'warning', 'require-statement-timeout': 'warning' } as const;
    const findings = await lint(['ALTER TABLE users ADD COLUMN a int', 'ALTER TABLE users ADD COLUMN b int'], { ruleLevels: on });
    assert.deepEqual(rules(findings).sort(), ['require-lock-timeout', 'require-statement-timeout']);
    assert.deepEqual(await lint(["SET lock_timeout = '2s'", "SELECT set_config('statement_timeout', '1min', true)", 'ALTER TABLE users ADD COLUMN a int'], { ruleLevels: on }), []);
  });
});
