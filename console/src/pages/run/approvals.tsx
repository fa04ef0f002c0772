import { useState } from 'preact/hooks';
import { enc, postJson } from '../../api/client.js';
import type { Run } from '../../api/types.js';
import { ActionResult, Field, Section, Time, useAction, type Action } from '../../components/ui.js';
import { useSession } from '../../session-context.js';

/** The policy's slots still open (the server's services/approvals/policy.ts, for display only). */
export function openSlots(required: string[], approvedRoles: string[]): string[] {
  const open = [...required];
  const leftovers: string[] = [];
  for (const role of approvedRoles) {
    const i = open.indexOf(role);
    if (i >= 0) open.splice(i, 1);
    else leftovers.push(role);
  }
  for (const _ of leftovers) {
    const i = open.indexOf('any');
    if (i >= 0) open.splice(i, 1);
  }
  return open;
}

/** The roles `me` could approve this run as right now, or [] (the server still decides). */
export function approvableAs(run: Run, subject: string, roles: Array<'engineering' | 'sre'>): Array<'engineering' | 'sre'> {
  if (run.status !== 'awaiting_approval' || run.requestedBy === subject) return [];
  const current = run.approvals.filter((a) => a.current);
  if (current.some((a) => a.subject === subject)) return [];
  const open = openSlots(run.requiredApprovals, current.filter((a) => a.decision === 'approve').map((a) => a.role));
  return roles.filter((r) => open.includes(r) || open.includes('any'));
}

function DecisionForm({ run, roles, action, onDone }: { run: Run; roles: Array<'engineering' | 'sre'>; action: Action; onDone(): void }) {
  const [role, setRole] = useState(roles[0]!);
  const [comment, setComment] = useState('');
  const decide = (decision: 'approve' | 'reject') => action.run(async () => {
    await postJson<Run>(`/v1/runs/${enc(run.id)}/approvals`, { role, decision, ...(comment.trim() ? { comment: comment.trim() } : {}) });
    onDone();
    return decision === 'approve' ? `Approved as ${role}.` : `Rejected as ${role}.`;
  });
  return (
    <form class="decision" onSubmit={(e) => e.preventDefault()} aria-label="Your decision">
      {roles.length > 1 ? (
        <fieldset>
          <legend>Decide as</legend>
          {roles.map((r) => (
            <label key={r} class="inline"><input type="radio" name="approval-role" value={r} checked={role === r} onChange={() => setRole(r)} /> {r}</label>
          ))}
        </fieldset>
      ) : <p>You decide as <strong>{role}</strong>, on digest <span class="mono small">{run.digest.slice(0, 12)}…</span>.</p>}
      <Field id="approval-comment" label="Comment (optional)">
        <textarea id="approval-comment" maxLength={2000} rows={2} value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <div class="form-actions">
        <button type="button" disabled={action.busy} onClick={() => void decide('approve')}>Approve</button>
        <button type="button" class="danger" disabled={action.busy} onClick={() => void decide('reject')}>Reject</button>
      </div>
    </form>
  );
}

export function Approvals({ run, onChange }: { run: Run; onChange(): void }) {
  const { me } = useSession();
  // Kept here: the form goes away once the decision is recorded, its outcome stays.
  const action = useAction();
  const roles = approvableAs(run, me.subject, me.can.approveAs);
  const current = run.approvals.filter((a) => a.current);
  const stale = run.approvals.filter((a) => !a.current);
  const open = openSlots(run.requiredApprovals, current.filter((a) => a.decision === 'approve').map((a) => a.role));
  return (
    <Section title="Approvals" id="approvals">
      <p>Policy: {run.requiredApprovals.join(' + ')}. {run.status === 'awaiting_approval' ? (open.length ? `Still needed: ${open.join(', ')}.` : 'Satisfied.') : null}</p>
      {current.length === 0 ? <p class="muted">No decision on the current digest yet.</p> : (
        <ul class="plain" data-testid="approvals">
          {current.map((a) => (
            <li key={`${a.subject}-${a.at}`}>
              <strong>{a.decision === 'approve' ? 'Approved' : 'Rejected'}</strong> by {a.subject} as {a.role}, <Time iso={a.at} />{a.comment ? <>: <q>{a.comment}</q></> : null}
            </li>
          ))}
        </ul>
      )}
      {stale.length ? <p class="muted small">{stale.length} earlier decision(s) were on content that changed since and no longer count.</p> : null}
      {roles.length ? <DecisionForm run={run} roles={roles} action={action} onDone={onChange} /> : null}
      <ActionResult action={action} what="Your decision" />
      {run.status === 'awaiting_approval' && run.requestedBy === me.subject ? <p class="muted">You requested this run, so you cannot approve it.</p> : null}
    </Section>
  );
}
