// SQL analysis for preflight: a squawk-style migration linter and per-statement
// lock/impact analysis, both on the real PostgreSQL 15 parser (libpg-query).
export type { LintFinding, LintInput, LockMode, Severity, StatementImpact } from './types.js';
export { lintMigration } from './lint.js';
export { analyzeStatements } from './analyze.js';
export { splitStatements } from './parse.js';
export { createdExtensions } from './extensions.js';
export { createRunLinter, type RunLinter } from './lint-run.js';
// Used by build-report.ts for findings that come from outside the linter.
export { applyAcknowledgements } from './acks.js';
export { withRuleLevels } from './rule-catalog.js';
