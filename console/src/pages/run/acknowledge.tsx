import { useState } from 'preact/hooks';
import { enc, postJson } from '../../api/client.js';
import type { Finding, Run } from '../../api/types.js';
import { ActionResult, Field, useAction } from '../../components/ui.js';
import { useSession } from '../../session-context.js';

// Findings about the preflight itself (the server's services/preflight/api-acks.ts): no form, the server would refuse.
const NOT_ACKNOWLEDGEABLE = new Set([
  'target-unreachable', 'nothing-to-apply', 'pending-set-invalid', 'missing-migration-file', 'migration-order', 'unknown-to',
  'unknown-environment', 'import-outside-snapshot', 'import-unresolved', 'content-changed', 'rehearsal-failed',
]);

/** Whether `me` may be offered the form for this finding (the server still decides). */
export function mayAcknowledge(run: Run, finding: Finding, me: { subject: string; can: { acknowledgeFindings: boolean } }): boolean {
  return me.can.acknowledgeFindings
    && run.requestedBy.toLowerCase() !== me.subject.toLowerCase()
    && (run.status === 'preflight_failed' || run.status === 'awaiting_approval')
    && finding.id !== undefined && !finding.acknowledged && !NOT_ACKNOWLEDGEABLE.has(finding.rule);
}

/** Acknowledge one finding with a reason: POST /v1/runs/:id/acknowledgements, then the report is reloaded. */
export function AcknowledgeForm({ run, finding, onDone }: { run: Run; finding: Finding; onDone(): void }) {
  const { me } = useSession();
  const action = useAction();
  const [reason, setReason] = useState('');
  if (!mayAcknowledge(run, finding, me)) return null;
  const id = `ack-reason-${finding.id}`;
  const submit = () => action.run(async () => {
    await postJson(`/v1/runs/${enc(run.id)}/acknowledgements`, { finding: finding.id, reason: reason.trim() });
    onDone();
    return 'Acknowledged.';
  });
  return (
    <details class="acknowledge">
      <summary>Acknowledge…</summary>
      <form onSubmit={(e) => { e.preventDefault(); void submit(); }} aria-label={`Acknowledge ${finding.rule}`}>
        <Field id={id} label="Why is this risk accepted?" hint={`Recorded as ${me.subject}, for this digest only.`}>
          <textarea id={id} aria-describedby={`${id}-hint`} required maxLength={2000} rows={2} value={reason} onInput={(e) => setReason((e.target as HTMLTextAreaElement).value)} />
        </Field>
        <div class="form-actions"><button type="submit" disabled={action.busy || reason.trim() === ''}>Acknowledge</button></div>
      </form>
      <ActionResult action={action} what="The acknowledgement" />
    </details>
  );
}
