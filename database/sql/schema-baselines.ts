import type { Query } from '../db.js';
import type { FingerprintRow } from './schema-fingerprint.js';

/** Written once per run: a re-apply keeps the baseline of the first attempt. `format`: which kinds `objects` covers. */
export const insertSchemaBaseline = (runId: string, environment: string, digest: string, objects: FingerprintRow[], format: number): Query => ({
  text: `INSERT INTO run_schema_baselines (run_id, environment, digest, objects, format) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (run_id) DO NOTHING`,
  values: [runId, environment, digest, JSON.stringify(objects), format],
});

export const selectSchemaBaseline = (runId: string): Query => ({
  text: 'SELECT digest, objects, format, taken_at FROM run_schema_baselines WHERE run_id = $1',
  values: [runId],
});
