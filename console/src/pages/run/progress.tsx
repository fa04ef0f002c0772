import type { AuditEvent, Run } from '../../api/types.js';
import { Section } from '../../components/ui.js';

export const LIVE = ['applying', 'verifying', 'monitoring', 'rolling_back', 'restoring'];

/** The events that start what this section follows: an apply, a rollback or a restore. */
export const startsLive = (e: AuditEvent) => e.type === 'apply.started' || e.to === 'rolling_back' || e.to === 'restoring';

interface Step {
  label: string;
  done: boolean;
}

/** The apply (or rollback) as it happens, from the events since it started. */
function steps(run: Run, events: AuditEvent[]): { title: string; steps: Step[]; migrations: { done: number; total: number } } {
  const finished = !LIVE.includes(run.status);
  const rollback = ['rolling_back', 'restoring'].includes(run.status) || events.some((e) => e.to === 'rolling_back' || e.to === 'restoring');
  const startType = rollback ? (e: AuditEvent) => e.to === 'rolling_back' || e.to === 'restoring' : (e: AuditEvent) => e.type === 'apply.started';
  const start = events.findLastIndex(startType);
  const since = start < 0 ? [] : events.slice(start);
  const has = (pred: (e: AuditEvent) => boolean) => since.some(pred);
  if (rollback) {
    const reverted = since.filter((e) => e.type === 'migration.reverted').length;
    return {
      title: `${run.status === 'restoring' || has((e) => e.to === 'restoring') ? 'Restore' : 'Rollback'} ${finished ? `finished: ${run.status}` : 'in progress'}`,
      steps: [
        { label: 'Started', done: start >= 0 },
        { label: 'Workers paused', done: has((e) => e.type === 'workers.paused') },
        { label: 'Backup restored or migrations reverted', done: has((e) => e.type === 'backup.restored') || reverted > 0 },
        { label: 'Workers resumed', done: has((e) => e.type === 'workers.resumed') },
        { label: 'Finished', done: has((e) => e.to === 'rolled_back' || e.to === 'restored' || e.to === 'failed') },
      ],
      migrations: { done: reverted, total: run.migrations.length },
    };
  }
  const applied = since.filter((e) => e.type === 'migration.applied').length;
  return {
    title: finished ? `Apply finished: ${run.status}` : 'Apply in progress',
    steps: [
      { label: 'Apply started', done: start >= 0 },
      { label: 'ETL workers paused', done: has((e) => e.type === 'workers.paused') },
      { label: 'Backup verified', done: has((e) => e.type === 'backup.verified') },
      { label: `Migrations applied (${applied} of ${run.migrations.length})`, done: applied >= run.migrations.length && run.migrations.length > 0 },
      { label: 'Verification', done: has((e) => e.to === 'monitoring' || e.to === 'verification_failed') },
      { label: 'ETL workers resumed', done: has((e) => e.type === 'workers.resumed') },
      // With nothing to watch a run goes from verifying straight to its outcome.
      { label: 'Post-apply watch', done: has((e) => e.from === 'monitoring' || (e.from === 'verifying' && e.to !== 'monitoring')) },
    ],
    migrations: { done: applied, total: run.migrations.length },
  };
}

/**
 * Shown while the run is live, and kept (with its outcome) once it ends if the
 * page followed it: a fast apply must not vanish before the operator saw it.
 */
export function LiveProgress({ run, events, followed }: { run: Run; events: AuditEvent[]; followed: boolean }) {
  if (!LIVE.includes(run.status) && !followed) return null;
  const view = steps(run, events);
  return (
    <Section title={view.title} id="progress">
      <p>
        <label for="migration-progress">Migrations</label>{' '}
        <progress id="migration-progress" max={Math.max(1, view.migrations.total)} value={view.migrations.done}>{view.migrations.done} of {view.migrations.total}</progress>{' '}
        <span>{view.migrations.done} of {view.migrations.total}</span>
      </p>
      <ol class="steps" aria-live="polite" data-testid="live-progress">
        {view.steps.map((s) => <li key={s.label} class={s.done ? 'done' : 'todo'}>{s.done ? '✓ ' : '… '}{s.label}</li>)}
      </ol>
    </Section>
  );
}
