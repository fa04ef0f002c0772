import { unwrap, type AstNode } from './ast.js';
import { ackFor, mapSource, parseAcks, withFileAck } from './acks.js';
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
import { touchedObjects } from './touched.js';
import type { LintFinding, LintInput, RunScope } from './types.js';

const RULES: readonly Rule[] = [
  indexRules, columnRules, constraintRules, destructiveRules, robustnessRules, transactionRules, maintenanceRules, schemaChangeRules, styleRules,
];

export interface LintResult {
  findings: LintFinding[];
  /** The tables after the migration ran, and what the catalog would say then: the next migration's input in a static lint of several files. */
  tablesAfter: Set<string>;
  factsAfter: SchemaFacts;
  /** For the next migration of the same run (lint-run.ts): the pre-existing tables still there, and what the run did so far. */
  existingAfter: Set<string>;
  runAfter: RunScope;
}

/** `objects`: what the statement touches, for acks that name an object. */
type Report = (hit: Hit, statement: string, objects: ReadonlySet<string>) => void;

/** Rules, then the statements a DO block's body runs (as if in its one transaction), then the statement's effect on the state. */
async function lintStatement(kind: string, body: AstNode, text: string, state: LintState, report: Report): Promise<void> {
  qualifyBySearchPath(kind, body, state);
  const objects = touchedObjects(kind, body);
  for (const hit of identifierHits(text)) report(hit, text, objects);
  for (const rule of RULES) for (const hit of rule(kind, body, state)) report(hit, text, objects);
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
        const prefixed: Report = (hit, statement, touched) => report({ ...hit, message: `${where}${hit.message}` }, statement, touched);
        qualifyBySearchPath(parsed[0], parsed[1], state);
        const touched = touchedObjects(parsed[0], parsed[1]);
        for (const hit of identifierHits(s.text)) prefixed(hit, s.text, touched);
        for (const rule of RULES) for (const hit of rule(parsed[0], parsed[1], state)) prefixed(hit, s.text, touched);
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
  const fileType = input.file?.toLowerCase().endsWith('.sql') ? 'sql' : 'js';
  const state = new LintState({
    existingTables: input.existingTables,
    transactional: input.transactional,
    fileType,
    serverMajor: input.serverMajor ?? 15,
    facts: input.facts,
    assumeTablesExist: input.assumeTablesExist ?? false,
    run: input.run,
  });
  // Each finding with where its top-level statement sits in the file and what it touches: what acks are matched by.
  const found: Array<{ finding: LintFinding; at: number | null; objects: ReadonlySet<string> }> = [];
  const map = mapSource(input.source, fileType);
  let at: number | null = null;
  const report: Report = (hit, statement, objects) => {
    const level = ruleLevel(hit.rule, input.ruleLevels);
    if (level === 'off') return;
    found.push({
      at,
      objects,
      finding: {
        rule: hit.rule,
        severity: level ?? hit.severity,
        migration: input.migration,
        statement: quoteStatement(statement),
        message: `${hit.message} See ${ruleDocPath(hit.rule)}.`,
        acknowledged: null,
      },
    });
  };
  let openedBy = '';
  let openedAt: number | null = null;
  for (const sql of input.statements) {
    const split = await trySplit(sql);
    if (!split.ok) {
      at = map.locate(sql);
      report({ rule: 'syntax-error', severity: 'error', message: `Does not parse as PostgreSQL 15 SQL (${split.error}), so it cannot be checked; fix the statement.` }, sql, new Set());
      continue;
    }
    const parsed = split.statements.flatMap(({ text, node }) => {
      const unwrapped = unwrap(node);
      return unwrapped ? [{ text, kind: unwrapped[0], body: unwrapped[1] }] : [];
    });
    const together = multiStatementHits(parsed.map((p) => [p.kind, p.body]), state);
    for (const [index, p] of parsed.entries()) {
      at = map.locate(p.text);
      for (const m of together) if (m.index === index) report(m.hit, p.text, new Set());
      const wasOpen = state.explicitBlockOpen;
      await lintStatement(p.kind, p.body, p.text, state, report);
      if (!wasOpen && state.explicitBlockOpen) [openedBy, openedAt] = [p.text, at];
    }
  }
  at = openedAt;
  for (const hit of endOfMigrationHits(state)) report(hit, openedBy, new Set());
  const acks = parseAcks(input.source);
  const { existing, scope } = state.runAfterMigration();
  return {
    findings: found.map((f) => withFileAck(f.finding, ackFor(f.finding.rule, map.anchorsOf(f.at), f.objects, acks, map))),
    tablesAfter: state.tablesAfterMigration(),
    factsAfter: state.factsAfterMigration(),
    existingAfter: existing,
    runAfter: scope,
  };
}

export async function lintMigration(input: LintInput): Promise<LintFinding[]> {
  return (await lintMigrationDetailed(input)).findings;
}
