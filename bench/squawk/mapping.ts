// squawk rule → the rules of ours that report the same hazard. A squawk case
// counts as caught when any of them fires; a squawk "ok" case counts against
// precision when any of them fires. `safety` marks squawk's rules about locks,
// rewrites, data loss and broken clients (the rest are type/naming style).

export interface Mapping {
  squawk: string;
  ours: string[];
  safety: boolean;
  note?: string;
}

export const MAPPING: readonly Mapping[] = [
  { squawk: 'adding-field-with-default', ours: ['adding-field-with-volatile-default'], safety: true },
  { squawk: 'adding-foreign-key-constraint', ours: ['constraint-missing-not-valid', 'adding-foreign-key-constraint'], safety: true },
  { squawk: 'adding-not-nullable-field', ours: ['adding-not-nullable-field'], safety: true },
  { squawk: 'adding-required-field', ours: ['adding-required-field'], safety: true },
  { squawk: 'adding-serial-primary-key-field', ours: ['disallowed-unique-constraint'], safety: true },
  { squawk: 'ban-alter-domain-with-add-constraint', ours: ['ban-alter-domain-with-add-constraint'], safety: true },
  { squawk: 'ban-concurrent-index-creation-in-transaction', ours: ['ban-concurrent-index-creation-in-transaction'], safety: true },
  { squawk: 'ban-create-domain-with-constraint', ours: ['ban-create-domain-with-constraint'], safety: true },
  { squawk: 'ban-drop-column', ours: ['ban-drop-column'], safety: true },
  { squawk: 'ban-drop-database', ours: ['ban-drop-database'], safety: true },
  { squawk: 'ban-drop-not-null', ours: ['ban-drop-not-null'], safety: true },
  { squawk: 'ban-drop-table', ours: ['ban-drop-table'], safety: true },
  { squawk: 'ban-duplicate-column-assignments', ours: ['ban-duplicate-column-assignments'], safety: true },
  { squawk: 'ban-truncate-cascade', ours: ['ban-truncate-cascade'], safety: true },
  { squawk: 'ban-uncommitted-transaction', ours: ['ban-uncommitted-transaction'], safety: true },
  { squawk: 'changing-column-type', ours: ['changing-column-type'], safety: true },
  {
    squawk: 'constraint-missing-not-valid',
    ours: ['constraint-missing-not-valid', 'disallowed-unique-constraint', 'adding-exclusion-constraint'],
    safety: true,
  },
  { squawk: 'disallowed-unique-constraint', ours: ['disallowed-unique-constraint'], safety: true },
  { squawk: 'identifier-too-long', ours: ['identifier-too-long'], safety: true },
  { squawk: 'prefer-repack', ours: ['ban-vacuum-full', 'ban-cluster'], safety: true, note: 'ours fire on every server version, not only PostgreSQL 19+' },
  { squawk: 'prefer-robust-stmts', ours: ['prefer-robust-stmts'], safety: true },
  { squawk: 'renaming-column', ours: ['renaming-column'], safety: true },
  { squawk: 'renaming-table', ours: ['renaming-table'], safety: true },
  { squawk: 'require-concurrent-index-creation', ours: ['require-concurrent-index-creation'], safety: true },
  { squawk: 'require-concurrent-index-deletion', ours: ['require-concurrent-index-deletion'], safety: true },
  { squawk: 'require-concurrent-partition-detach', ours: ['require-concurrent-partition-detach'], safety: true },
  { squawk: 'require-concurrent-reindex', ours: ['require-concurrent-reindex'], safety: true },
  { squawk: 'require-lock-timeout', ours: ['require-lock-timeout'], safety: true, note: 'off by default: the service applies with lock_timeout' },
  { squawk: 'require-statement-timeout', ours: ['require-statement-timeout'], safety: true, note: 'off by default: the service applies with statement_timeout' },
  {
    squawk: 'require-timeout-settings',
    ours: ['require-lock-timeout', 'require-statement-timeout'],
    safety: true,
    note: 'squawk\'s alias for the two timeout rules',
  },
  { squawk: 'transaction-nesting', ours: ['transaction-nesting'], safety: true },
  { squawk: 'ban-char-field', ours: ['ban-char-field'], safety: false },
  { squawk: 'prefer-bigint-over-int', ours: ['prefer-bigint-over-int'], safety: false },
  { squawk: 'prefer-bigint-over-smallint', ours: ['prefer-bigint-over-smallint'], safety: false },
  { squawk: 'prefer-identity', ours: ['prefer-identity'], safety: false },
  { squawk: 'prefer-text-field', ours: ['prefer-text-field'], safety: false },
  { squawk: 'prefer-timestamptz', ours: ['prefer-timestamptz'], safety: false },
  { squawk: 'require-enum-value-ordering', ours: ['require-enum-value-ordering'], safety: false },
  { squawk: 'require-table-schema', ours: ['require-table-schema'], safety: false },
];
