import { useState } from 'preact/hooks';
import { enc, postJson } from '../../api/client.js';
import type { Environment, Run } from '../../api/types.js';
import { ActionResult, Field, Section, Time, useAction } from '../../components/ui.js';
import { useSession } from '../../session-context.js';

const APPLYABLE = ['approved', 'scheduled'];
const CANCELLABLE = ['created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled'];
const PREFLIGHT_AGAIN = ['preflight_failed', 'awaiting_approval', 'approved', 'scheduled'];

function ApplyForm({ run, env, onDone }: { run: Run; env: Environment | undefined; onDone(): void }) {
  const { me } = useSession();
  const action = useAction();
  const [typed, setTyped] = useState('');
  const [override, setOverride] = useState(false);
  const [reason, setReason] = useState('');
  const windowOpen = env?.windowOpen ?? true;
  const frozen = env?.activeFreeze ?? null;
  const needsOverride = !windowOpen;
  const matches = typed === run.environment;
  const ready = matches && (!needsOverride || (override && reason.trim() !== ''));
  return (
    <form
      class="apply"
      aria-label="Apply now"
      onSubmit={(e) => {
        e.preventDefault();
        if (!ready) return;
        void action.run(async () => {
          await postJson<Run>(`/v1/runs/${enc(run.id)}/apply`, {
            confirm: typed, ...(needsOverride ? { overrideWindow: true, reason: reason.trim() } : reason.trim() ? { reason: reason.trim() } : {}),
          });
          setTyped('');
          onDone();
          return 'Apply started.';
        });
      }}
    >
      <h3>Apply now</h3>
      {frozen ? <p class="error">{run.environment} is frozen until <Time iso={frozen.to} /> ({frozen.reason}): no apply until then.</p> : null}
      {run.scheduledFor ? <p>The scheduler will apply it at <Time iso={run.scheduledFor} /> unless you apply it now.</p> : null}
      {needsOverride && !frozen ? (
        <p class="warn">No maintenance window is open{env?.nextWindow ? <> (the next opens <Time iso={env.nextWindow.start} />)</> : null}. Applying now needs a window override with a reason{me.can.applyOutsideWindow ? '' : ', which needs the sre role as well as operator'}.</p>
      ) : null}
      <Field id="apply-confirm" label={`Type the environment name (${run.environment}) to confirm`} hint="The apply pauses ETL workers, takes a verified backup, applies the approved migrations, verifies and resumes.">
        <input id="apply-confirm" autoComplete="off" spellcheck={false} value={typed} aria-describedby="apply-confirm-hint" aria-invalid={typed !== '' && !matches ? 'true' : undefined} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} />
      </Field>
      {needsOverride && me.can.applyOutsideWindow ? (
        <>
          <label class="inline"><input type="checkbox" checked={override} onChange={(e) => setOverride((e.target as HTMLInputElement).checked)} /> Apply outside the window</label>
          <Field id="apply-reason" label="Reason for applying outside the window">
            <textarea id="apply-reason" rows={2} maxLength={2000} value={reason} onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)} />
          </Field>
        </>
      ) : null}
      <div class="form-actions">
        <button type="submit" class="danger" disabled={!ready || action.busy || frozen !== null || (needsOverride && !me.can.applyOutsideWindow)}>Apply {run.environment} now</button>
      </div>
      <ActionResult action={action} what="The apply" />
    </form>
  );
}

function CancelForm({ run, onDone }: { run: Run; onDone(): void }) {
  const action = useAction();
  const [reason, setReason] = useState('');
  return (
    <form class="cancel" aria-label="Cancel the run" onSubmit={(e) => {
      e.preventDefault();
      void action.run(async () => {
        await postJson<Run>(`/v1/runs/${enc(run.id)}/cancel`, reason.trim() ? { reason: reason.trim() } : {});
        onDone();
        return 'Run cancelled.';
      });
    }}>
      <h3>Cancel</h3>
      <Field id="cancel-reason" label="Reason (optional)">
        <input id="cancel-reason" maxLength={2000} value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      </Field>
      <div class="form-actions"><button type="submit" class="secondary" disabled={action.busy}>Cancel run</button></div>
      <ActionResult action={action} what="Cancelling" />
    </form>
  );
}

function PreflightAgain({ run, onDone }: { run: Run; onDone(): void }) {
  const action = useAction();
  return (
    <div>
      <button type="button" class="secondary" disabled={action.busy} onClick={() => void action.run(async () => {
        await postJson<Run>(`/v1/runs/${enc(run.id)}/preflight`);
        onDone();
        return 'Preflight started again; approvals stand only if the content is unchanged.';
      })}>Run preflight again</button>
      <ActionResult action={action} what="Preflight" />
    </div>
  );
}

/** What the caller may do to the run now; nothing is shown when nothing is allowed. */
export function RunActions({ run, env, onChange }: { run: Run; env: Environment | undefined; onChange(): void }) {
  const { me } = useSession();
  const own = run.requestedBy === me.subject;
  const manage = me.can.manageAnyRun || (me.can.manageOwnRuns && own);
  const canApply = me.can.apply && APPLYABLE.includes(run.status);
  const canCancel = manage && CANCELLABLE.includes(run.status);
  const canPreflight = manage && PREFLIGHT_AGAIN.includes(run.status);
  if (!canApply && !canCancel && !canPreflight) return null;
  return (
    <Section title="Actions" id="actions">
      {canApply ? <ApplyForm run={run} env={env} onDone={onChange} /> : null}
      {canPreflight ? <PreflightAgain run={run} onDone={onChange} /> : null}
      {canCancel ? <CancelForm run={run} onDone={onChange} /> : null}
    </Section>
  );
}
