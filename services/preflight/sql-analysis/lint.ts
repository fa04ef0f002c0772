import { unwrap, type AstNode } from './ast.js';
import { applyAcks, parseAcks } from './acks.js';
import { embeddedIn } from './embedded-sql.js';
import { LintState } from './lint-state.js';
import { trySplit } from './parse.js';
import { ruleDocPath, ruleLevel } from './rule-catalog.js';
import type { Hit, Rule } from './rule.js';
import { columnRules } from './rules-columns.js';
import { constraintRules } from './rules-constraints.js';
import { destructiveRules } from './rules-destructive.js';
import { indexRules } from './rules-index.js';
import { maintenanceRules } from './rules-maintenance.js';
import { robustnessRules } from './rules-robustness.js';
import { schemaChangeRules } from './rules-schema-changes.js';
import { identifierHits, styleRules } from './rules-style.js';
import { endOfMigrationHits, multiStatementHits, transactionRules } from './rules-transactions.js';
import type { SchemaFacts } from './schema-facts.js';
import { qualifyBySearchPath } from './search-path.js';
import { quoteStatement } from './statement-text.js';
import type { LintFinding, LintInput } from './types.js';

const RULES: readonly Rule[] = [
  indexRules, columnRules, constraintRules, destructiveRules, robustnessRules, transactionRules, maintenanceRules, schemaChangeRules, styleRules,
];

export interface LintResult {
  findings: LintFinding[];
  /** The tables after the migration ran, and what the catalog would say then: the next migration's input in a static lint of several files. */
  tablesAfter: Set<string>;
  factsAfter: SchemaFacts;
}

type Report = (hit: Hit, statement: string) => void;

/** Rules, then the statements a DO block's body runs (as if in its one transaction), then the statement's effect on the state. */
async function lintStatement(kind: string, body: AstNode, text: string, state: LintState, report: Report): Promise<void> {
  qualifyBySearchPath(kind, body, state);
  for (const hit of identifierHits(text)) report(hit, text);
  for (const rule of RULES) for (const hit of rule(kind, body, state)) report(hit, text);
  const inner = await embeddedIn({ [kind]: body });
  if (inner.length > 0) {
    const saved = { transactional: state.transactional, insideDo: state.insideDo };
    state.doInTransaction = state.transactional;
    state.transactional = true;
    state.insideDo = true;
    try {
      for (const s of inner) {
        const parsed = unwrap(s.node);
        if (!parsed) continue;
        const where = s.via === 'execute' ? 'Inside a DO block, in an EXECUTEd string: ' : 'Inside a DO block: ';
        const prefixed: Report = (hit, statement) => report({ ...hit, message: `${where}${hit.message}` }, statement);
        qualifyBySearchPath(parsed[0], parsed[1], state);
        for (const hit of identifierHits(s.text)) prefixed(hit, s.text);
        for (const rule of RULES) for (const hit of rule(parsed[0], parsed[1], state)) prefixed(hit, s.text);
        state.apply(parsed[0], parsed[1]);
      }
    } finally {
      state.transactional = saved.transactional;
      state.insideDo = saved.insideDo;
    }
  }
  state.apply(kind, body);
}

/**
 * Lints one migration's statements in order, so that a table created earlier
 * in the migration is known to be new (and empty) when later statements touch
 * it, and returns what the schema looks like afterwards.
 */
export async function lintMigrationDetailed(input: LintInput): Promise<LintResult> {
  const state = new LintState({
    existingTables: input.existingTables,
    transactional: input.transactional,
    fileType: input.file?.toLowerCase().endsWith('.sql') ? 'sql' : 'js',
    serverMajor: input.serverMajor ?? 15,
    facts: input.facts,
    assumeTablesExist: input.assumeTablesExist ?? false,
  });
  const findings: LintFinding[] = [];
  const report: Report = (hit, statement) => {
    const level = ruleLevel(hit.rule, input.ruleLevels);
    if (level === 'off') return;
    findings.push({
      rule: hit.rule,
      severity: level ?? hit.severity,
      migration: input.migration,
      statement: quoteStatement(statement),
      message: `${hit.message} See ${ruleDocPath(hit.rule)}.`,
      acknowledged: null,
    });
  };
  let openedBy = '';
  for (const sql of input.statements) {
    const split = await trySplit(sql);
    if (!split.ok) {
      report({ rule: 'syntax-error', severity: 'error', message: `Does not parse as PostgreSQL 15 SQL (${split.error}), so it cannot be checked; fix the statement.` }, sql);
      continue;
    }
    const parsed = split.statements.flatMap(({ text, node }) => {
      const unwrapped = unwrap(node);
      return unwrapped ? [{ text, kind: unwrapped[0], body: unwrapped[1] }] : [];
    });
    const together = multiStatementHits(parsed.map((p) => [p.kind, p.body]), state);
    for (const [index, p] of parsed.entries()) {
      for (const m of together) if (m.index === index) report(m.hit, p.text);
      const wasOpen = state.explicitBlockOpen;
      await lintStatement(p.kind, p.body, p.text, state, report);
      if (!wasOpen && state.explicitBlockOpen) openedBy = p.text;
    }
  }
  for (const hit of endOfMigrationHits(state)) report(hit, openedBy);
  return {
    findings: applyAcks(findings, parseAcks(input.source)),
    tablesAfter: state.tablesAfterMigration(),
    factsAfter: state.factsAfterMigration(),
  };
}

export async function lintMigration(input: LintInput): Promise<LintFinding[]> {
  return (await lintMigrationDetailed(input)).findings;
}
