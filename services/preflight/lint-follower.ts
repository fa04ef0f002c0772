import type { MigrationFile } from '../migrations/files.js';
import type { Finding } from './report.js';
import type { MigrationTrace } from './rehearsal.js';
import type { LintBaseline } from './lint-baseline.js';
import { createRunLinter } from './sql-analysis/index.js';
import type { RuleLevel } from './sql-analysis/rule-catalog.js';

export interface LintFollowerInput {
  baseline: LintBaseline;
  files: MigrationFile[];
  /** The sealed bytes of each pending migration, by name. */
  texts: Map<string, string>;
  serverMajor: number;
  ruleLevels: Readonly<Record<string, RuleLevel>> | undefined;
}

/**
 * The run's lint, following the rehearsal: each up's trace is linted as soon
 * as the rehearsal has it (onTrace), while the copy runs the next migration
 * and this process mostly waits for it, instead of all of them once the
 * rehearsal is over. Linted in order against the target as it is before the
 * run, not the copy before each migration: a relation an earlier migration
 * of the run created is new, one it dropped is gone (lint-run.ts).
 * Per-migration catalog facts (column types, NOT NULL checks, volatility)
 * still come from the copy.
 */
export function lintFollower(input: LintFollowerInput) {
  const runLinter = createRunLinter({ existingTables: new Set(input.baseline.relations.map((r) => r.name)), searchPath: input.baseline.searchPath });
  const findings = new Map<string, Finding[]>();
  let chain: Promise<void> = Promise.resolve();
  const lintNext = (migration: string, trace: MigrationTrace, after?: Promise<unknown>) => {
    findings.set(migration, []);
    chain = chain.then(async () => {
      // Not while the rehearsal's reads before the next migration are going on: this process handles their rows.
      await after?.catch(() => undefined);
      findings.set(migration, (await runLinter.lint({
        migration,
        statements: trace.statements,
        transactional: trace.transactional,
        source: input.texts.get(migration) ?? '',
        file: input.files.find((f) => f.name === migration)?.file,
        facts: trace.factsBefore,
        serverMajor: input.serverMajor,
        ruleLevels: input.ruleLevels,
      })).findings);
    });
    // Thrown from done(); until then nobody awaits it.
    chain.catch(() => undefined);
  };
  return {
    /** Lints `trace` in order, once `after` (the rehearsal's reads before the next migration) settled. */
    onTrace: lintNext,
    /** Lints the traces the rehearsal did not hand over (read from the files after a failed up), then every finding in order. */
    async done(pending: string[], traces: Record<string, MigrationTrace>): Promise<Finding[]> {
      for (const name of pending) if (!findings.has(name) && traces[name]) lintNext(name, traces[name]);
      await chain;
      return pending.flatMap((name) => findings.get(name) ?? []);
    },
  };
}
