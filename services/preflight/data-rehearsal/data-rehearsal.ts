import type pg from 'pg';
import { one, rows } from '../../../database/db.js';
import { copyTableSizes, noParallelMaintenance } from '../../../database/sql/data-rehearsal.js';
import { backendPid } from '../../../database/sql/observe.js';
import type { StepOutcome } from '../../migrations/run-one.js';
import { analyzeStatements } from '../sql-analysis/index.js';
import { quoteStatement } from '../sql-analysis/statement-text.js';
import { statementEffects } from './locks-held.js';
import type { FixedCosts, ParallelSettings } from './calibrate.js';
import { estimateOnTarget, SCALING_METHOD, scaleOf, type StatementScale } from './scale.js';
import { StatementTimer, type TimedRun } from './statement-timing.js';
import type { DataRehearsalReport, MigrationMeasurement, ScaledEstimate, SeededTable, TableGrowth, TimedStatement } from './types.js';

/** A scaled estimate before the static one is known; `pieces`: how many parsed statements its SQL holds (the impact lists those). */
export type ScaledEstimateDraft = Omit<ScaledEstimate, 'staticEstimateMs'> & { pieces: number };

/** What the rehearsal hands to the report: the report's section, static estimates still to be joined (report-section.ts). */
export type DataRehearsalResult = Omit<DataRehearsalReport, 'scaledEstimates'> & { scaledEstimates: ScaledEstimateDraft[] };

export interface SeededCopy {
  requested: 'sample' | 'full';
  mode: DataRehearsalReport['mode'];
  skipped: DataRehearsalReport['skipped'];
  source: string | null;
  sampleRows: number | null;
  tables: SeededTable[];
  seededBytes: number;
  foreignKeysNotValid: string[];
  seedMs: number;
  notes: string[];
  fixed: FixedCosts | null;
  parallel: ParallelSettings | null;
}

const round1 = (n: number) => Math.round(n * 10) / 10;
const roundScale = (n: number) => (n >= 100 ? Math.round(n) : Number(n.toPrecision(3)));

async function tableSizes(client: pg.ClientBase): Promise<Map<string, number>> {
  return new Map((await rows<{ relation: string; bytes: number }>(client, copyTableSizes())).map((r) => [r.relation, r.bytes]));
}

/**
 * The copy's data and what the UP phase did on it: measure() wraps each
 * migration's run (statement timings, locks, growth), result() is the
 * report's section.
 */
export class DataRehearsal {
  private readonly perMigration: MigrationMeasurement[] = [];
  private readonly scaled: Array<{ migration: string; text: string; statement: TimedStatement; scale: StatementScale; pieces: number }> = [];
  private readonly notes: string[];
  private readonly seeded: Map<string, SeededTable>;
  private pid: number | null = null;

  constructor(private readonly copy: SeededCopy, private readonly url: string) {
    this.notes = [...copy.notes];
    this.seeded = new Map(copy.tables.map((t) => [t.table, t]));
  }

  get mode(): DataRehearsalReport['mode'] {
    return this.copy.mode;
  }

  /**
   * Runs one migration's up through `run`, given a client that times every
   * query. `again`: the up re-applied after its down, on the same rows; each
   * statement's lower time of the two is what is scaled (load on the server
   * only ever adds time).
   */
  async measure(migration: string, client: pg.ClientBase, run: (client: pg.ClientBase) => Promise<StepOutcome>, again = false): Promise<StepOutcome> {
    if (this.copy.mode === 'schema') return run(client);
    let timer: StatementTimer | null = null;
    let before = new Map<string, number>();
    try {
      if (this.pid === null) {
        this.pid = (await one<{ pid: number }>(client, backendPid())).pid;
        // The copy's index builds run serially; the estimate adds the target's parallel workers back.
        await client.query(noParallelMaintenance());
      }
      if (!again) before = await tableSizes(client);
      timer = new StatementTimer(client, this.url, this.pid);
      await timer.start();
    } catch (err) {
      this.notes.push(`Migration ${migration} was not timed: ${(err as Error).message}.`);
      if (timer) await timer.stop().catch(() => undefined);
      return run(client);
    }
    let timed: TimedRun | null = null;
    let outcome: StepOutcome;
    try {
      outcome = await run(timer.client);
    } finally {
      timed = await timer.stop();
    }
    try {
      if (again) this.recordAgain(migration, outcome, timed);
      else await this.record(migration, outcome, timed, before, await tableSizes(client));
    } catch (err) {
      this.notes.push(`The timings of migration ${migration} could not be read: ${(err as Error).message}.`);
    }
    return outcome;
  }

  private growthOf(table: string, bytesBefore: number, bytesAfter: number): TableGrowth {
    const seeded = this.seeded.get(table);
    const delta = bytesAfter - bytesBefore;
    // A table the run created holds what the run put there, on the target too.
    const factor = !seeded ? 1 : seeded.copiedRows > 0 ? seeded.targetRows / seeded.copiedRows : seeded.targetRows === 0 ? 1 : null;
    return { table, bytesBefore, bytesAfter, estimatedTargetGrowthBytes: factor === null ? null : Math.round(delta * factor) };
  }

  private async record(migration: string, outcome: StepOutcome, timed: TimedRun, before: Map<string, number>, after: Map<string, number>): Promise<void> {
    const effects = statementEffects(timed, outcome.statements);
    const measurement: MigrationMeasurement = { migration, statements: [], growth: [] };
    for (const e of effects) {
      const statement: TimedStatement = { sql: quoteStatement(e.query.sql), ms: round1(e.query.end - e.query.start), msAgain: null, ok: e.query.ok, locks: e.locks };
      measurement.statements.push(statement);
      const impacts = await analyzeStatements([e.query.sql]);
      this.scaled.push({ migration, text: e.query.sql.trim(), statement, scale: scaleOf(e, impacts, this.seeded), pieces: Math.max(1, impacts.length) });
    }
    for (const table of [...new Set([...before.keys(), ...after.keys()])].sort()) {
      const b = before.get(table) ?? 0;
      const a = after.get(table) ?? 0;
      if (a !== b) measurement.growth.push(this.growthOf(table, b, a));
    }
    this.perMigration.push(measurement);
  }

  private recordAgain(migration: string, outcome: StepOutcome, timed: TimedRun): void {
    const first = this.scaled.filter((s) => s.migration === migration);
    let next = 0;
    for (const e of statementEffects(timed, outcome.statements)) {
      const text = e.query.sql.trim();
      const i = first.findIndex((s, j) => j >= next && s.text === text);
      if (i === -1) continue;
      next = i + 1;
      first[i]!.statement.msAgain = round1(e.query.end - e.query.start);
    }
  }

  private estimates(): ScaledEstimateDraft[] {
    return this.scaled.map(({ migration, statement, scale: scaled, pieces }) => {
      const sampleMs = Math.min(statement.ms, statement.msAgain ?? Infinity);
      const { scale, method, tables } = scaled;
      return {
        migration, statement: statement.sql, sampleMs, scale: scale === null ? null : roundScale(scale), method, tables,
        ...estimateOnTarget(sampleMs, scaled, this.copy.fixed, this.copy.parallel, this.seeded), pieces,
      };
    });
  }

  result(): DataRehearsalResult {
    const c = this.copy;
    return {
      requested: c.requested,
      mode: c.mode,
      skipped: c.skipped,
      source: c.source,
      sampleRows: c.sampleRows,
      seededRows: c.tables.reduce((sum, t) => sum + t.copiedRows, 0),
      seededBytes: c.seededBytes,
      tables: c.tables,
      foreignKeysNotValid: c.foreignKeysNotValid,
      seedMs: c.seedMs,
      perMigration: this.perMigration,
      scaledEstimates: this.estimates(),
      method: SCALING_METHOD,
      notes: this.notes,
    };
  }
}
