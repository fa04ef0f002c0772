import { exec, transaction } from '../../database/db.js';
import { insertReport } from '../../database/sql/reports.js';
import { mergeApplyState } from '../../database/sql/apply.js';
import type pg from 'pg';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import type { SmokeOutcome, VerificationCheck } from '../verify/verify.js';
import type { WatchOutcome } from '../verify/watch.js';
import type { BackupRecord } from './backup.js';
import type { AppliedStep, MigrateFailure } from './migrate.js';
import type { Reconciliation } from './reconcile-types.js';

export interface ApplyReport {
  runId: string;
  environment: string;
  /** degraded: applied and verified, then the watch saw a regression (the run's status). */
  outcome: 'succeeded' | 'degraded' | 'failed' | 'verification_failed' | 'interrupted';
  /** Set when the run was marked interrupted: what the dead process left on the target. */
  reconciliation?: Reconciliation;
  actor: string;
  startedAt: string;
  finishedAt: string;
  backup: BackupRecord | null;
  workers: { method: string; pausedAt: string | null; previousReplicas: number | null; resumed: boolean; note: string | null } | null;
  migrations: AppliedStep[];
  /** A re-apply after an interruption: the run's migrations that had landed before this attempt. */
  landedBefore?: string[];
  lockRetries: number;
  failure: (Omit<Partial<MigrateFailure>, 'code'> & { code: string; message: string; phase: string }) | null;
  verification: VerificationCheck[];
  smoke: SmokeOutcome | null;
  watch: WatchOutcome | null;
  /** Replicas that carried the watch on after the one running it stopped. */
  watchTakenOverBy?: string[];
  notes: string[];
}

/** The run is no longer in the status its finisher expected: someone else ended it (an early watch end). */
export class RunMovedOn extends Error {
  constructor(readonly status: string) {
    super(`the run is ${status} now`);
  }
}

/** Stores the apply report and moves the run to its end status, in one transaction with the audit event. */
export async function finishApply(control: pg.Pool, runId: string, digest: string, report: ApplyReport, status: RunStatus, error: object | null, expect?: RunStatus[], statePatch?: object): Promise<void> {
  await transaction(control, async (client) => {
    const locked = await lockRunForUpdate(client, runId);
    if (expect && !expect.includes(locked.status)) throw new RunMovedOn(locked.status);
    await exec(client, insertReport(runId, 'apply', digest, report));
    if (statePatch) await exec(client, mergeApplyState(runId, statePatch));
    await transition(client, locked, status, { actor: 'system', details: error ? { error } : { report: 'apply' }, patch: { error }, expect });
  });
}
