import type pg from 'pg';
import type { Logger } from '../../logger.js';
// data-bearing rehearsal (issue 18)
import type { BackupRecord } from '../../apply/backup.js';
import type { DataRehearsalResult } from '../data-rehearsal/data-rehearsal.js';
import type { EnvironmentConfig } from '../../environments/model.js';
import type { AppliedMigration } from '../../migrations/pending.js';
import type { StepOutcome } from '../../migrations/run-one.js';
import type { MigrationSource } from '../../migrations/source.js';
import type { SmokeOutcome } from '../../etl/smoke.js';
import type { Observation } from '../observe/types.js';
import type { EphemeralDatabase } from '../ephemeral.js';
import type { SchemaFacts } from '../sql-analysis/schema-facts.js';

export type Phase = 'up' | 'down' | 'up-again';

export interface RehearsalStep {
  phase: Phase;
  migration: string;
  durationMs: number;
  ok: boolean;
  error: StepOutcome['error'];
  /**
   * A failure that follows from an earlier step the report already names (a
   * down that did not restore the schema, or a migration without a down):
   * that migration, whose irreversible-down finding tells this one's error.
   */
  explainedBy?: string | null;
}

export interface MigrationTrace {
  /** The SQL the migration ran, in order (node-pg-migrate's own bookkeeping removed). */
  statements: string[];
  transactional: boolean;
  /** Tables ('schema.table') that existed before this migration ran. */
  tablesBefore: string[];
  /** The catalog facts the linter needs (column types, NOT NULL checks, function volatility), read before this migration ran. */
  factsBefore?: SchemaFacts;
  /** What the migration was seen doing on the copy (locks, rewrites, scans, drops). */
  observed?: Observation;
  /**
   * 'static': the migration was not rehearsed (an earlier one failed); its SQL
   * was read from the file (a .sql file's up section, a JS/TS file's literal
   * pgm.sql strings), tables and facts carried on from the ones before it.
   */
  source?: 'rehearsal' | 'static';
}

export interface SchemaChange {
  tables: string[];
  indexes: string[];
}

/**
 * reversible: after its down the copy's schema is exactly what it was before its up;
 * irreversible: its down ran but left or removed something (downDiffs says what);
 * no-down: node-pg-migrate refuses to run it down (`down = false`, a .sql file
 * without a Down section, an up the builder cannot reverse);
 * not-checked: its down never ran (the rehearsal stopped before it).
 */
export type Reversibility = 'reversible' | 'irreversible' | 'no-down' | 'not-checked';

/** What a down migration left different from the schema before its up (objects as 'kind name'). */
export interface DownDiff {
  leaves: string[];
  removes: string[];
  changes: string[];
}

/** Something outside the copy's schema that a migration created, changed or removed while rehearsed. */
export interface ClusterObject {
  kind: 'role' | 'tablespace' | 'database' | 'subscription' | 'event trigger' | 'publication';
  name: string;
  change: 'created' | 'changed' | 'removed';
  migration: string;
  phase: Phase;
  /** server: shared by every database of the rehearsal server; database: inside the copy, gone with it. */
  scope: 'server' | 'database';
  /** What the rehearsal did about it afterwards; a failure to undo it is said here, never thrown. */
  cleanup: string;
}

/** Where the rehearsal ran, compared with the target. */
export interface RehearsalServer {
  /** null: could not be told. */
  sameAsTarget: boolean | null;
  /** How it was told (system identifier, data directory and port, start time and port). */
  method: string;
}

export interface StaticMigration {
  statements: string[];
  transactional: boolean;
  /** All of its SQL could be read (false: builder calls or computed strings the file reader cannot follow). */
  complete: boolean;
}

export interface RehearsalResult {
  database: string;
  /** data-bearing rehearsal (issue 18): the copy's rows and the UP phase timed on them (null: preflight.data is 'schema'). */
  data: DataRehearsalResult | null;
  /** What the pending migrations create and drop ('schema.name'): what verification expects on the target. */
  created: SchemaChange;
  dropped: SchemaChange;
  /** How the throw-away database was brought to the target's state. */
  /** 'empty': the target had no history and no schema object, so the copy was not seeded at all (seed.ts bareTarget). */
  seededFrom: 'pg_dump' | 'replay' | 'empty';
  seedNote: string | null;
  steps: RehearsalStep[];
  traces: Record<string, MigrationTrace>;
  /** The SQL each down migration ran on the copy, by migration: what a rollback plan shows (services/rollback-plan). */
  downStatements: Record<string, string[]>;
  failed: RehearsalStep | null;
  /** The smoke ETL run on the copy after up, down, up (null: not run). */
  smoke: SmokeOutcome | null;
  durationMs: number;
  /** Per pending migration: does its down restore the schema its up found (by schema fingerprint)? */
  reversibility: Record<string, Reversibility>;
  downDiffs: Record<string, DownDiff>;
  clusterObjects: ClusterObject[];
  server: RehearsalServer;
  /** Pending migrations whose up never ran on the copy (an earlier one failed). */
  notRehearsed: string[];
  /** Their SQL, read from the files, for the linter. */
  staticStatements: Record<string, StaticMigration>;
}

export interface RehearsalInput {
  runId: string;
  environment: EnvironmentConfig;
  targetUrl: string;
  targetServerMajor: number;
  serverUrl: string;
  /** ownerTag() of the control database, part of the throw-away database's name. */
  owner: string;
  /**
   * The empty copy, when the caller started creating it earlier (createEphemeralDatabase, named up front: the
   * guard's sweep of the run's dead attempts leaves it alone); rehearse() drops it whatever happens.
   */
  copy?: { name: string; created: Promise<EphemeralDatabase> };
  applied: AppliedMigration[];
  pending: string[];
  /** The pending migrations' sealed snapshot (services/migrations/snapshot.ts): the only bytes the rehearsal runs. */
  source: MigrationSource;
  /** data-bearing rehearsal (issue 18): for preflight.data 'full', the environment's latest verified pg_dump backup. */
  latestBackup?: BackupRecord | null;
  /** Where the guard records what the rehearsal may leave server-wide, for a sweep after a crash (globals-ledger.ts). */
  ledger: RehearsalLedgerInput;
  /**
   * Takes the copy's DROP DATABASE (a checkpoint, a tenth of a second or more) to await later, while the report
   * is built: given only when nothing server-wide waits for the copy to go. Without it the drop is awaited here.
   */
  deferCopyDrop?: (dropping: Promise<void>) => void;
  /**
   * Each up's trace as soon as it is complete, in order (the linter follows the rehearsal instead of waiting for
   * its end); `reading`: the copy's reads before the next migration, which the linter lets finish first.
   */
  onTrace?: (migration: string, trace: MigrationTrace, reading?: Promise<unknown>) => void;
  /**
   * Every up succeeded: what the rehearsal result will hold of the up phase
   * (its traces, what it created and dropped, its steps so far), handed over
   * before the down and up-again phases run, for work that needs no more
   * (the read-only checks of the target).
   */
  onUpComplete?: (up: UpComplete) => void;
}

export type UpComplete = Pick<RehearsalResult, 'traces' | 'created' | 'dropped' | 'steps'>;

export interface RehearsalLedgerInput {
  control: pg.Pool;
  /** The digest of the sealed snapshot being rehearsed: its files are read for what they create. */
  digest: string;
  log: Logger;
}
