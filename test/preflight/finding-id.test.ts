import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { withFindingIds } from '../../services/preflight/finding-id.js';
import type { Finding } from '../../services/preflight/report.js';

const finding = (over: Partial<Finding> = {}): Finding => ({
  rule: 'ban-drop-column', severity: 'error', migration: '1000_drop', statement: 'ALTER TABLE users DROP COLUMN a', message: 'about 100 rows', acknowledged: null, ...over,
});

describe('finding ids', () => {
  test('the same finding gets the same id whatever its message or whitespace; another occurrence, rule, migration or statement another', () => {
    const [a] = withFindingIds([finding()]);
    const [same] = withFindingIds([finding({ message: 'about 2,000 rows', statement: 'ALTER TABLE users\n  DROP COLUMN a' })]);
    assert.match(a!.id!, /^[0-9a-f]{16}$/);
    assert.equal(same!.id, a!.id);
    const [first, second] = withFindingIds([finding(), finding()]);
    assert.equal(first!.id, a!.id);
    assert.notEqual(second!.id, first!.id, 'two findings of one statement are two ids');
    const others = withFindingIds([finding({ rule: 'renaming-column' }), finding({ migration: '2000_drop' }), finding({ statement: 'ALTER TABLE users DROP COLUMN b' })]);
    assert.equal(new Set([a!.id, ...others.map((f) => f.id)]).size, 4);
  });
});
