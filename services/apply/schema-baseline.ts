import { exec, maybeOne } from '../../database/db.js';
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
    const fp = await ctx.targets.withClient(env, (client) => readFingerprint(client, scopeOf(env)));
    await exec(ctx.control, insertSchemaBaseline(run.id, env.name, fingerprintDigest(fp), fingerprintRows(fp), FINGERPRINT_FORMAT));
    return [];
  } catch (err) {
    return [`The target's schema before the apply could not be recorded (${(err as Error).message}); a rollback down will not be able to compare the schema with it.`];
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
