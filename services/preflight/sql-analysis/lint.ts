import { unwrap } from './ast.js';
import { applyAcks, parseAcks } from './acks.js';
import { MigrationState } from './migration-state.js';
import { trySplit } from './parse.js';
import type { Rule } from './rule.js';
import { columnRules } from './rules-columns.js';
import { constraintRules } from './rules-constraints.js';
import { destructiveRules } from './rules-destructive.js';
import { indexRules } from './rules-index.js';
import { robustnessRules } from './rules-robustness.js';
import { quoteStatement } from './statement-text.js';
import type { LintFinding, LintInput } from './types.js';

const RULES: readonly Rule[] = [indexRules, columnRules, constraintRules, destructiveRules, robustnessRules];

/**
 * Lints one migration's statements in order, so that a table created earlier
 * in the migration is known to be new (and empty) when later statements touch it.
 */
export async function lintMigration(input: LintInput): Promise<LintFinding[]> {
  const state = new MigrationState(input.existingTables, input.transactional);
  const findings: LintFinding[] = [];
  const report = (rule: string, severity: LintFinding['severity'], statement: string, message: string) =>
    findings.push({ rule, severity, migration: input.migration, statement: quoteStatement(statement), message, acknowledged: null });

  for (const sql of input.statements) {
    const split = await trySplit(sql);
    if (!split.ok) {
      report('syntax-error', 'error', sql, `Does not parse as PostgreSQL 15 SQL (${split.error}), so it cannot be checked; fix the statement.`);
      continue;
    }
    for (const { text, node } of split.statements) {
      const parsed = unwrap(node);
      if (!parsed) continue;
      const [kind, body] = parsed;
      for (const rule of RULES) {
        for (const hit of rule(kind, body, state)) report(hit.rule, hit.severity, text, hit.message);
      }
      state.apply(kind, body);
    }
  }
  return applyAcks(findings, parseAcks(input.source));
}
