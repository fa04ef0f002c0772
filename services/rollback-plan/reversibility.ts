import { diffSentence } from '../migrations/schema-fingerprint.js';
import type { PreflightReport } from '../preflight/report.js';

// Whether `rollback down` can undo a migration, by what the preflight
// rehearsal saw: its down ran cleanly on the copy AND the copy's schema was
// then the one from before its up (issue 16: a down that does nothing used
// to count as reversible, and a rollback reported rolled_back with the
// tables still there).

type Rehearsal = NonNullable<PreflightReport['rehearsal']>;

export interface DownVerdict {
  name: string;
  reversible: boolean;
  /** Why not, in words. */
  why: string | null;
}

export function downVerdicts(rehearsal: Rehearsal | null | undefined, names: string[]): DownVerdict[] {
  const downs = rehearsal?.steps.filter((s) => s.phase === 'down') ?? [];
  return names.map((name) => {
    const verdict = rehearsal?.reversibility?.[name];
    const diff = rehearsal?.downDiffs?.[name];
    if (verdict === 'irreversible') return { name, reversible: false, why: `its down migration does not restore the schema: it ${diff ? diffSentence(diff) : 'changes it'}` };
    if (verdict === 'no-down') return { name, reversible: false, why: 'it has no down migration node-pg-migrate will run' };
    if (!downs.some((s) => s.migration === name && s.ok)) return { name, reversible: false, why: 'its down migration failed or never ran in the preflight rehearsal' };
    return { name, reversible: true, why: null };
  });
}

/** Why `down` is refused for these verdicts (null: it is not), pointing at restore. */
export function irreversibleBlocker(runId: string, verdicts: DownVerdict[]): string | null {
  const bad = verdicts.filter((v) => !v.reversible);
  if (bad.length === 0) return null;
  return `${bad.map((v) => `${v.name} cannot be reversed (${v.why})`).join('; ')}; use mode "restore" instead ` +
    `(POST /v1/runs/${runId}/rollback with "mode": "restore"), which puts back the verified backup taken before the apply`;
}
