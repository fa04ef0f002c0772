import { useState } from 'preact/hooks';
import { enc, getOptional, postJson } from '../../api/client.js';
import type { AtRisk, RollbackPlan, RollbackRequest, Run } from '../../api/types.js';
import { ActionResult, ErrorNote, Field, Section, Status, Time, useAction } from '../../components/ui.js';
import { useResource } from '../../lib/use-resource.js';
import { useSession } from '../../session-context.js';

const UNDOABLE = ['succeeded', 'failed', 'verification_failed', 'degraded', 'interrupted'];

function RequestForm({ run, onDone }: { run: Run; onDone(): void }) {
  const action = useAction();
  const [mode, setMode] = useState<'down' | 'restore'>('down');
  const [typed, setTyped] = useState('');
  const [reason, setReason] = useState('');
  const ready = typed === run.environment && reason.trim() !== '';
  return (
    <form aria-label="Ask for a rollback" onSubmit={(e) => {
      e.preventDefault();
      if (!ready) return;
      void action.run(async () => {
        await postJson<RollbackRequest>(`/v1/runs/${enc(run.id)}/rollback`, { mode, confirm: typed, reason: reason.trim() });
        setTyped('');
        onDone();
        return `Asked for a ${mode === 'down' ? 'rollback' : 'restore'}; another sre must approve it.`;
      });
    }}>
      <h3>Ask for a rollback</h3>
      <fieldset>
        <legend>How</legend>
        <label class="inline"><input type="radio" name="rollback-mode" value="down" checked={mode === 'down'} onChange={() => setMode('down')} /> Down: revert exactly this run's migrations</label>
        <label class="inline"><input type="radio" name="rollback-mode" value="restore" checked={mode === 'restore'} onChange={() => setMode('restore')} /> Restore: put the run's verified backup back</label>
      </fieldset>
      <Field id="rollback-confirm" label={`Type the environment name (${run.environment}) to confirm`}>
        <input id="rollback-confirm" autoComplete="off" spellcheck={false} value={typed} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} />
      </Field>
      <Field id="rollback-reason" label="Reason">
        <textarea id="rollback-reason" rows={2} maxLength={2000} required value={reason} onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <div class="form-actions"><button type="submit" class="danger" disabled={!ready || action.busy}>Ask for the {mode === 'down' ? 'rollback' : 'restore'}</button></div>
      <ActionResult action={action} what="The rollback request" />
    </form>
  );
}

function DecideForm({ run, request, onDone }: { run: Run; request: RollbackRequest; onDone(): void }) {
  const action = useAction();
  const [comment, setComment] = useState('');
  const decide = (decision: 'approve' | 'reject') => action.run(async () => {
    // The approver approves the plan shown with the request: the service refuses it if the plan changed since.
    await postJson<RollbackRequest>(`/v1/runs/${enc(run.id)}/rollback/approvals`, { decision, ...(decision === 'approve' && request.planDigest ? { planDigest: request.planDigest } : {}), ...(comment.trim() ? { comment: comment.trim() } : {}) });
    onDone();
    return decision === 'approve' ? `Approved: the ${request.mode === 'down' ? 'rollback' : 'restore'} is starting.` : 'Rejected.';
  });
  return (
    <form aria-label="Decide the rollback request" onSubmit={(e) => e.preventDefault()}>
      <Field id="rollback-comment" label="Comment (optional)">
        <textarea id="rollback-comment" rows={2} maxLength={2000} value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <div class="form-actions">
        <button type="button" class="danger" disabled={action.busy} onClick={() => void decide('approve')}>Approve the {request.mode === 'down' ? 'rollback' : 'restore'}</button>
        <button type="button" class="secondary" disabled={action.busy} onClick={() => void decide('reject')}>Reject the request</button>
      </div>
      <ActionResult action={action} what="Your decision" />
    </form>
  );
}

const rowsText = (d: AtRisk) => (d.rows === null ? 'rows unknown' : `${d.rowsExact ? '' : 'at least '}${d.rows} row(s)`);

/** What a rollback would do: the plan stored with the request, else a preview (GET /v1/runs/:id/rollback/plan). */
function PlanView({ plan }: { plan: RollbackPlan }) {
  return (
    <div class="plan" data-testid="rollback-plan">
      <h3>Rollback plan ({plan.mode === 'down' ? 'down' : 'restore'})</h3>
      <p class="muted small">Plan digest <code>{plan.digest.slice(0, 12)}</code></p>
      {plan.blockers.length ? <ul>{plan.blockers.map((b, i) => <li key={i} class="error">{b}</li>)}</ul> : null}
      {plan.down ? (
        <>
          <ol>
            {plan.down.migrations.map((m) => (
              <li key={m.name}>
                {m.name} {m.reversible ? null : <strong>(not reversible{m.why ? `: ${m.why}` : ''})</strong>}
                {m.sql ? <pre class="code small">{m.sql.join(';\n')}</pre> : <span class="muted"> (down SQL not captured)</span>}
              </li>
            ))}
          </ol>
          {plan.down.drops.length ? (
            <table>
              <caption>Data the down drops</caption>
              <thead><tr><th scope="col">Table</th><th scope="col">Column</th><th scope="col">Rows</th></tr></thead>
              <tbody>{plan.down.drops.map((d, i) => <tr key={i}><td>{d.table}</td><td>{d.column ?? '(whole table)'}</td><td>{rowsText(d)}</td></tr>)}</tbody>
            </table>
          ) : <p class="muted">The down drops no table or column that holds data.</p>}
        </>
      ) : null}
      {plan.restore ? (
        <>
          <p>Backup taken {Math.round(plan.restore.backup.ageSeconds / 60)} min ago.</p>
          {plan.restore.writesSinceBackup.known ? (
            <p>Writes since the backup that a restore loses: {plan.restore.writesSinceBackup.total.inserted} inserted, {plan.restore.writesSinceBackup.total.updated} updated, {plan.restore.writesSinceBackup.total.deleted} deleted.</p>
          ) : <p class="muted">{plan.restore.writesSinceBackup.note ?? 'Writes since the backup are not known.'}</p>}
        </>
      ) : null}
      {plan.notes.length ? <ul class="muted small">{plan.notes.map((n, i) => <li key={i}>{n}</li>)}</ul> : null}
    </div>
  );
}

function PlanPreview({ run }: { run: Run }) {
  const plan = useResource(() => getOptional<RollbackPlan>(`/v1/runs/${enc(run.id)}/rollback/plan?mode=down`), [run.id, run.status]);
  return plan.data ? <PlanView plan={plan.data} /> : null;
}

export function Rollback({ run, requests, error, onChange }: { run: Run; requests: RollbackRequest[] | undefined; error: unknown; onChange(): void }) {
  const { me } = useSession();
  const open = requests?.find((r) => r.status === 'awaiting_approval' || r.status === 'running');
  const canAsk = me.can.requestRollback && UNDOABLE.includes(run.status) && !open;
  const canDecide = me.can.approveRollback && open?.status === 'awaiting_approval' && open.requestedBy !== me.subject;
  if (!UNDOABLE.includes(run.status) && !(requests?.length)) return null;
  return (
    <Section title="Rollback" id="rollback">
      <ErrorNote error={error} what="Could not load rollback requests" />
      {open?.plan ? <PlanView plan={open.plan} /> : canAsk ? <PlanPreview run={run} /> : null}
      {requests?.length ? (
        <ul class="plain" data-testid="rollback-requests">
          {requests.map((r) => (
            <li key={r.id}>
              <Status status={r.status} /> {r.mode === 'down' ? 'Rollback (down)' : 'Restore'} asked by {r.requestedBy}, <Time iso={r.createdAt} />: {r.reason}
              {r.decidedBy ? <span class="muted"> — decided by {r.decidedBy}{r.decisionComment ? `: ${r.decisionComment}` : ''}</span> : null}
            </li>
          ))}
        </ul>
      ) : <p class="muted">No rollback or restore was asked for.</p>}
      {canDecide && open ? <DecideForm run={run} request={open} onDone={onChange} /> : null}
      {open?.status === 'awaiting_approval' && open.requestedBy === me.subject ? <p class="muted">You asked for this; another sre must approve it.</p> : null}
      {canAsk ? <RequestForm run={run} onDone={onChange} /> : null}
    </Section>
  );
}
