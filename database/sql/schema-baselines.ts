import type { Query } from '../db.js';
import type { FingerprintRow } from './schema-fingerprint.js';

/** Written once per run: a re-apply keeps the baseline of the first attempt. */
export const insertSchemaBaseline = (runId: string, environment: string, digest: string, objects: FingerprintRow[]): Query => ({
  text: `INSERT INTO run_schema_baselines (run_id, environment, digest, objects) VALUES ($1, $2, $3, $4)
         ON CONFLICT (run_id) DO NOTHING`,
  values: [runId, environment, digest, JSON.stringify(objects)],
});

export const selectSchemaBaseline = (runId: string): Query => ({
  text: 'SELECT digest, objects, taken_at FROM run_schema_baselines WHERE run_id = $1',
  values: [runId],
});
