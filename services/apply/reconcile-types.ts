import type { KillOutcome } from '../child-processes.js';

/** A session a dead run still had open on its target, and whether it was terminated. */
export interface OrphanSession {
  pid: number;
  applicationName: string | null;
  state: string | null;
  query: string;
  runningFor: string | null;
  terminated: boolean;
}

/** What was left of a run whose process died, and what the reconciler stopped. */
export interface Orphans {
  target: { reachable: boolean; error: string | null };
  /** Child processes the run had recorded as running (pg_dump, pg_restore, commands). */
  processes: KillOutcome[];
  /** Sessions it still had open on the target (e.g. a statement still running); terminated so nothing of it lands later. */
  sessions: OrphanSession[];
}

/** What a dead process left behind, found before the run is marked interrupted. */
export interface Reconciliation {
  at: string;
  previousStatus: string;
  /** The pipeline phase the process was in (pause, backup, migrate, verify, resume, watch). */
  phase: string | null;
  lease: { owner: string | null; expiresAt: string | null };
  target: { reachable: boolean; error: string | null };
  /** Each of the run's migrations: recorded in the target's migrations table (null: the target could not be read), in the control ledger. */
  migrations: Array<{ name: string; inTarget: boolean | null; inLedger: boolean }>;
  /** What landed: from the target's migrations table, or (target unreachable) what the ledger lists. */
  landed: string[];
  notLanded: string[];
  /** False when the target could not be read: `landed` is then the ledger's word only. */
  landedKnown: boolean;
  /** Landed on the target but missing from the ledger, or the other way round. */
  ledgerMismatch: string[];
  /** Landed but not ledgered (the process died before its ledger write): recorded now with the approved sha256. */
  ledgerRepaired: string[];
  invalidIndexes: Array<{ index: string; table: string }>;
  workers: { method: string; pausedByRun: boolean; etlControlPaused: boolean | null; etlControlReason: string | null };
  /** Sessions the dead apply still had open on the target; terminated so nothing of it lands later. */
  orphanedSessions: OrphanSession[];
  /** Child processes it left (killed when this host ran them). */
  orphanedProcesses: KillOutcome[];
  /** A dump file pg_dump was still writing when the process died: removed (it is no backup). */
  partialBackupRemoved: string | null;
  /** POST /v1/runs/:id/close can free the environment: nothing of the run is on the target. */
  closable: boolean;
  advice: string[];
}
