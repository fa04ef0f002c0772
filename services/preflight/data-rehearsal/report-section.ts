import type { Finding } from '../report.js';
import type { DataRehearsalResult } from './data-rehearsal.js';
import { withoutDataValues } from './redact.js';
import type { DataRehearsalReport, ScaledEstimate } from './types.js';

// The data-bearing rehearsal in the preflight report (build-report.ts): the
// section with the static estimates joined in, the finding when the data
// could not be copied, and the rehearsal's messages stripped of row values.
// Structural types only: report.ts imports ours, so ours cannot import it.

interface ImpactLike {
  migrations: Array<{ migration: string; statements: Array<{ estimatedMs: number }> }>;
}

type FindingLike = Finding;

/**
 * The report's section: each timed statement beside the static estimate of
 * the same SQL (the impact lists the parsed statements of the same SQL in the
 * same order; `pieces` says how many belong to each timed one).
 */
export function dataRehearsalSection(data: DataRehearsalResult | null | undefined, impact: ImpactLike | null): DataRehearsalReport | null {
  if (!data) return null;
  const section = joinStatic(data, impact);
  return { ...section, ...slowestOnly(section) };
}

/** A migration of thousands of statements (row inserts, say) keeps the report readable: its slowest ones, in order. */
const MAX_STATEMENTS_PER_MIGRATION = 200;

function slowestOnly(d: DataRehearsalReport): Pick<DataRehearsalReport, 'perMigration' | 'scaledEstimates' | 'notes'> {
  const notes = [...d.notes];
  const keep = <T>(list: T[], ms: (x: T) => number): T[] => {
    if (list.length <= MAX_STATEMENTS_PER_MIGRATION) return list;
    const floor = list.map(ms).sort((a, b) => b - a)[MAX_STATEMENTS_PER_MIGRATION - 1]!;
    const kept: T[] = [];
    for (const x of list) if (ms(x) >= floor && kept.length < MAX_STATEMENTS_PER_MIGRATION) kept.push(x);
    return kept;
  };
  const perMigration = d.perMigration.map((m) => {
    if (m.statements.length > MAX_STATEMENTS_PER_MIGRATION) {
      notes.push(`Migration ${m.migration} ran ${m.statements.length} statements; the ${MAX_STATEMENTS_PER_MIGRATION} slowest are shown.`);
    }
    return { ...m, statements: keep(m.statements, (s) => s.ms) };
  });
  const migrations = [...new Set(d.scaledEstimates.map((e) => e.migration))];
  const scaledEstimates = migrations.flatMap((name) => keep(d.scaledEstimates.filter((e) => e.migration === name), (e) => e.estimatedTargetMs ?? e.sampleMs));
  return { perMigration, scaledEstimates, notes };
}

function joinStatic(data: DataRehearsalResult, impact: ImpactLike | null): DataRehearsalReport {
  const cursor = new Map<string, number>();
  const scaledEstimates: ScaledEstimate[] = data.scaledEstimates.map(({ pieces, ...e }) => {
    const statics = impact?.migrations.find((m) => m.migration === e.migration)?.statements;
    const from = cursor.get(e.migration) ?? 0;
    cursor.set(e.migration, from + pieces);
    const mine = statics?.slice(from, from + pieces) ?? [];
    return { ...e, staticEstimateMs: mine.length === pieces ? mine.reduce((sum, s) => sum + s.estimatedMs, 0) : null };
  });
  return { ...data, scaledEstimates };
}

/** A warning when the environment asked for data the copy could not be given: the report says what was not measured. */
export function dataRehearsalFindings(data: DataRehearsalResult | null | undefined): FindingLike[] {
  if (!data?.skipped) return [];
  const rule = data.skipped.tooLarge ? 'data-rehearsal-too-large' : 'data-rehearsal-skipped';
  return [{
    rule, severity: 'warning', migration: null, statement: null, acknowledged: null,
    message: `preflight.data is "${data.requested}", but the rehearsal ran on the schema alone: ${data.skipped.reason}. ` +
      'Statement timings, held locks and growth on data were not measured; the estimates are the static ones only.' +
      (data.skipped.tooLarge ? ' Raise preflight.fullDataMaxBytes or use preflight.data "sample".' : ''),
  }];
}

/** The notes a data-bearing rehearsal adds to the report. */
export function dataRehearsalNotes(data: DataRehearsalResult | null | undefined, failedSqlState: string | null): string[] {
  if (!data || data.mode === 'schema') return [];
  const notes = [`Data-bearing rehearsal (${data.mode}): ${data.seededRows} rows (${data.seededBytes} bytes) from ${data.source}; per-statement timings, held locks and scaled estimates are in dataRehearsal.`];
  if (data.foreignKeysNotValid.length) {
    notes.push(`${data.foreignKeysNotValid.length} foreign key(s) are NOT VALID on the copy because the sampled rows do not satisfy them (${data.foreignKeysNotValid.slice(0, 5).join(', ')}${data.foreignKeysNotValid.length > 5 ? ', …' : ''}).`);
  }
  if (failedSqlState === '23503' && data.mode === 'sample') {
    notes.push('The rehearsal failed on a foreign key (SQLSTATE 23503): a sample holds rows whose referenced rows were not sampled, so this failure can be the sample\'s, not the migration\'s. Re-run with preflight.data "schema" or "full" to tell.');
  }
  return notes;
}

interface RehearsalLike {
  steps: Array<{ error: { message: string } | null }>;
  smoke: { detail: string } | null;
  data?: { mode: string } | null;
}

/** On a copy with the target's rows, PostgreSQL's messages can quote them: those values go before anything reaches the report. */
export function withoutCopiedValues<T extends RehearsalLike>(rehearsal: T): T {
  if (!rehearsal.data || rehearsal.data.mode === 'schema') return rehearsal;
  for (const step of rehearsal.steps) if (step.error) step.error.message = withoutDataValues(step.error.message);
  if (rehearsal.smoke) rehearsal.smoke.detail = withoutDataValues(rehearsal.smoke.detail);
  return rehearsal;
}
