import type pg from 'pg';
import { maybeOne, rows } from '../../database/db.js';
import { promotionOfRun, runsWithDigest, succeededRunWithDigest } from '../../database/sql/overrides.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { appendEvent } from '../audit.js';
import { conflict } from '../errors.js';
import type { LockedRun } from '../runs/transition.js';

/** Which earlier run proves the content: what the approval records and the report links. */
export interface PromotionEvidence {
  environment: string;
  runId: string;
  digest: string;
  succeededAt: string | null;
  link: string;
}

/**
 * Promotion (`requires: {environment}`): a run is approvable only when a run
 * with the same digest has succeeded in the required environment. Null when
 * the environment has no such rule; a 409 naming what is missing otherwise.
 */
export async function promotionEvidence(client: pg.ClientBase, env: EnvironmentConfig, run: Pick<LockedRun, 'id' | 'digest'>): Promise<PromotionEvidence | null> {
  if (!env.requires) return null;
  const required = env.requires.environment;
  const found = await maybeOne<{ id: string; digest: string; succeeded_at: Date | null }>(client, succeededRunWithDigest(required, run.digest));
  if (found) {
    return { environment: required, runId: found.id, digest: found.digest, succeededAt: found.succeeded_at?.toISOString() ?? null, link: `/v1/runs/${found.id}` };
  }
  const others = await rows<{ id: string; status: string }>(client, runsWithDigest(required, run.digest, 5));
  const tried = others.length
    ? ` Runs of ${required} with this digest: ${others.map((o) => `${o.id} (${o.status})`).join(', ')}.`
    : ` No run of ${required} carries this digest.`;
  throw conflict(
    `Promotion: ${env.name} approves only content that has already succeeded on ${required}; no ${required} run with digest ${run.digest.slice(0, 12)}… has succeeded.${tried} Apply the same migrations to ${required} first, then approve this run.`,
    { code: 'promotion-required', missing: { environment: required, digest: run.digest, status: 'succeeded' }, candidates: others },
  );
}

/** Recorded when the run becomes approved (same transaction). */
export async function recordPromotion(client: pg.ClientBase, run: Pick<LockedRun, 'id' | 'environment'>, actor: string, evidence: PromotionEvidence): Promise<void> {
  await appendEvent(client, { runId: run.id, environment: run.environment, type: 'promotion.verified', actor, details: { ...evidence } });
}

/** The evidence recorded for a run, or null (no promotion rule, or not approved yet). */
export async function promotionOf(db: pg.ClientBase | pg.Pool, runId: string): Promise<PromotionEvidence | null> {
  const row = await maybeOne<{ details: PromotionEvidence }>(db, promotionOfRun(runId));
  return row?.details ?? null;
}

/** The report's Markdown line linking the earlier run ('' without promotion). */
export function renderPromotionMarkdown(evidence: PromotionEvidence | null): string {
  if (!evidence) return '';
  return `\n## Promotion\n\nPromoted from ${evidence.environment} run [${evidence.runId}](${evidence.link}) (digest \`${evidence.digest.slice(0, 12)}…\`${evidence.succeededAt ? `, succeeded ${evidence.succeededAt}` : ''}).\n`;
}
