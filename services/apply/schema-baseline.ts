import { exec, maybeOne, one, type Queryable } from '../../database/db.js';
import { isPgError, LOCK_NOT_AVAILABLE } from '../../database/pg-errors.js';
import { lockTimeout } from '../../database/sql/locks.js';
import type { FingerprintRow } from '../../database/sql/schema-fingerprint.js';
import { insertSchemaBaseline, selectSchemaBaseline } from '../../database/sql/schema-baselines.js';
import type { ServiceContext } from '../context.js';
import type { EnvironmentConfig } from '../environments/model.js';
import {
  asOfFormat, describeDiff, diffFingerprints, diffSentence, FINGERPRINT_FORMAT, fingerprintDigest, fingerprintFromRows, fingerprintRows, isEmptyDiff, readFingerprint,
} from '../migrations/schema-fingerprint.js';

// The target's schema before a run changes it, and after a rollback `down`
// the comparison with it: removing the run's rows from the migrations table
// is not the same as undoing what its migrations did.

const scopeOf = (env: EnvironmentConfig) => ({ migrationsSchema: env.migrationsSchema, migrationsTable: env.migrationsTable });

// Deparsing a view or an index takes ACCESS SHARE on its table: behind a
// session holding ACCESS EXCLUSIVE the read would wait for as long as that
// session does, with the workers paused and the window running. It waits this
// long at most; the apply goes on without a baseline (a note says so).
const BASELINE_LOCK_WAIT_MS = 5000;

async function readBounded(client: Queryable, env: EnvironmentConfig) {
  // For the session, not a transaction: a read that gives up must not leave one aborted for the reader's own cleanup.
  const { lock_timeout: saved } = await one<{ lock_timeout: string }>(client, { text: `SELECT current_setting('lock_timeout') AS lock_timeout` });
  await exec(client, lockTimeout(BASELINE_LOCK_WAIT_MS, 'session'));
  try {
    return await readFingerprint(client, scopeOf(env));
  } finally {
    await exec(client, lockTimeout(saved, 'session')).catch(() => undefined);
  }
}

/**
 * Right before the run's migrations: the target's schema fingerprint, kept
 * in the control database. Only before the first migration of the run lands
 * (`nothingLanded`); a re-apply keeps the first attempt's. A failure to take
 * it does not stop the apply: it is a note, and a later down is then only
 * checked against the migrations table.
 */
export async function recordPreApplySchema(ctx: ServiceContext, run: { id: string }, env: EnvironmentConfig, nothingLanded: boolean): Promise<string[]> {
  if (!nothingLanded) return [];
  try {
    const fp = await ctx.targets.withClient(env, (client) => readBounded(client, env));
    await exec(ctx.control, insertSchemaBaseline(run.id, env.name, fingerprintDigest(fp), fingerprintRows(fp), FINGERPRINT_FORMAT));
    return [];
  } catch (err) {
    // The target's pool wraps errors with what it was doing; the SQLSTATE stays in the message.
    const why = isPgError(err, LOCK_NOT_AVAILABLE) || /\b55P03\b|lock timeout/.test((err as Error).message)
      ? `a session held a lock that reading a view or index definition waits for, for over ${BASELINE_LOCK_WAIT_MS / 1000} s`
      : (err as Error).message;
    return [`The target's schema before the apply could not be recorded (${why}); a rollback down will not be able to compare the schema with it.`];
  }
}

export interface SchemaCheck {
  check: { id: string; status: 'pass' | 'fail'; detail: string };
  failure: { code: string; message: string } | null;
}

/** After a real down: is the target's schema the one recorded before the apply? null: none was recorded (a run applied before this check existed). */
export async function verifySchemaRestored(ctx: ServiceContext, run: { id: string }, env: EnvironmentConfig): Promise<SchemaCheck | null> {
  const baseline = await maybeOne<{ digest: string; objects: FingerprintRow[]; format: number; taken_at: Date }>(ctx.control, selectSchemaBaseline(run.id));
  if (!baseline) return null;
  // Owners, privileges and comments are compared too: both reads are of the target itself, never of a copy restored without them.
  const now = asOfFormat(await ctx.targets.withClient(env, (client) => readFingerprint(client, scopeOf(env))), baseline.format);
  const diff = describeDiff(diffFingerprints(fingerprintFromRows(baseline.objects), now).values());
  if (isEmptyDiff(diff)) {
    return { check: { id: 'schema-restored', status: 'pass', detail: `The target's schema is the one recorded before the apply (${baseline.taken_at.toISOString()}).` }, failure: null };
  }
  const sentence = diffSentence(diff);
  return {
    check: { id: 'schema-restored', status: 'fail', detail: `Compared with its schema before the apply, the target now ${sentence}.` },
    failure: {
      code: 'schema-not-restored',
      message: `The down migrations ran, but the target's schema is not back to where it was before the apply: it ${sentence}. ` +
        'Fix it by hand, or restore the backup taken before the apply (POST /v1/runs/${run.id}/rollback with mode "restore").',
    },
  };
}
