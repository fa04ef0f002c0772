import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lintFollower } from '../../services/preflight/lint-follower.js';
import type { MigrationTrace } from '../../services/preflight/rehearsal.js';

// The run's lint follows the rehearsal (lint-follower.ts): the rehearsed ups
// are handed over as they finish, the rest (read from the files after a failed
// up) at the end, and the linter must still see them in the run's order: a
// table an earlier migration dropped and created again is new to the later ones.

const trace = (statements: string[], source: MigrationTrace['source'] = 'rehearsal'): MigrationTrace =>
  ({ statements, transactional: true, tablesBefore: [], source });

const follower = () => lintFollower({
  baseline: { relations: [{ name: 'public.accounts', kind: 'table', rows: 1_000_000, bytes: 1e9 }], searchPath: ['public'] },
  files: [], texts: new Map(), serverMajor: 15, ruleLevels: undefined,
});

const rules = (findings: Array<{ rule: string; migration: string | null }>) => findings.map((f) => `${f.migration}:${f.rule}`);

describe('lint that follows the rehearsal', () => {
  test('traces handed over during the rehearsal and those left for the end are linted in the run order', async () => {
    const lint = follower();
    const traces: Record<string, MigrationTrace> = {
      '1_index_existing': trace(['CREATE INDEX accounts_a ON accounts (id)']),
      '2_replace': trace(['DROP TABLE accounts', 'CREATE TABLE accounts (id int)']),
      // Not rehearsed (read from its file): after 2_replace, accounts is the run's own new table.
      '3_index_new': trace(['CREATE INDEX accounts_b ON accounts (id)'], 'static'),
    };
    lint.onTrace('1_index_existing', traces['1_index_existing']!);
    lint.onTrace('2_replace', traces['2_replace']!);
    const found = rules(await lint.done(Object.keys(traces), traces));
    assert.ok(found.includes('1_index_existing:require-concurrent-index-creation'), found.join(', '));
    assert.ok(found.some((f) => f.startsWith('2_replace:')), found.join(', '));
    assert.ok(!found.some((f) => f.startsWith('3_index_new:require-concurrent-index-creation')), `the recreated table is new to 3_index_new: ${found.join(', ')}`);
    // In the pending order, not in the order they were handed over.
    assert.deepEqual([...new Set(found.map((f) => f.split(':')[0]))], ['1_index_existing', '2_replace']);
  });

  test('a migration with no trace (never reached) is skipped, the others keep their order', async () => {
    const lint = follower();
    const traces = { a: trace(['CREATE INDEX x ON accounts (id)']) };
    lint.onTrace('a', traces.a);
    assert.deepEqual(rules(await lint.done(['a', 'b'], traces)), ['a:require-concurrent-index-creation']);
  });
});
