import type { RunReport } from '../../api/types.js';
import { Section, Status, TableWrap, Time } from '../../components/ui.js';
import { bytes, duration } from '../../lib/format.js';

export function VerificationReport({ report }: { report: RunReport }) {
  const apply = report.apply?.report;
  const rollback = report.rollback;
  return (
    <>
      {apply ? (
        <Section title="Apply and verification report" id="report">
          <p><Status status={apply.outcome} /> <span class="muted">applied by {apply.actor}, <Time iso={apply.startedAt} /> to <Time iso={apply.finishedAt} />; {apply.lockRetries} lock retries</span></p>
          <dl class="facts">
            <dt>Backup</dt>
            <dd>{apply.backup ? `${apply.backup.id} (${apply.backup.method}, ${bytes(apply.backup.sizeBytes)}${apply.backup.verifiedAt ? ', verified' : ', NOT verified'})` : 'none'}</dd>
            <dt>Workers</dt>
            <dd>{apply.workers ? `paused via ${apply.workers.method}; ${apply.workers.resumed ? 'resumed' : 'NOT resumed'}${apply.workers.note ? ` (${apply.workers.note})` : ''}` : 'not paused'}</dd>
            {apply.smoke ? <><dt>Smoke ETL</dt><dd>{apply.smoke.ok ? 'passed' : apply.smoke.notConfigured ? 'not configured' : apply.smoke.ran ? 'FAILED' : 'not run'}: {apply.smoke.detail}</dd></> : null}
            {apply.watch ? <><dt>Post-apply watch</dt><dd>{apply.watch.degraded ? 'DEGRADED' : 'healthy'} after {apply.watch.watchedSeconds} s: {apply.watch.detail}</dd></> : null}
          </dl>
          {apply.failure ? (
            <div class="failure" role="note">
              <h3>Failure</h3>
              <p>{apply.failure.phase}: {apply.failure.code}{apply.failure.migration ? ` in ${apply.failure.migration}` : ''}{apply.failure.sqlState ? ` (SQLSTATE ${apply.failure.sqlState})` : ''}</p>
              <p>{apply.failure.message}</p>
              {apply.failure.statement ? <pre class="code">{apply.failure.statement}</pre> : null}
            </div>
          ) : null}
          <h3>Migrations applied</h3>
          <TableWrap label="Migrations applied">
            <table>
              <thead><tr><th scope="col">Migration</th><th scope="col">Time</th><th scope="col">Attempts</th><th scope="col">Transaction</th></tr></thead>
              <tbody>{apply.migrations.map((m) => <tr key={m.name}><td class="mono small">{m.name}</td><td>{duration(m.durationMs)}</td><td>{m.attempts}</td><td>{m.transactional ? 'yes' : 'no'}</td></tr>)}</tbody>
            </table>
          </TableWrap>
          <h3>Verification</h3>
          <TableWrap label="Verification checks">
            <table data-testid="verification">
              <thead><tr><th scope="col">Check</th><th scope="col">Result</th><th scope="col">Detail</th></tr></thead>
              <tbody>{apply.verification.map((c) => <tr key={c.id}><td class="mono">{c.id}</td><td><Status status={c.status} /></td><td>{c.detail}</td></tr>)}</tbody>
            </table>
          </TableWrap>
          {apply.notes.length ? <ul>{apply.notes.map((n, i) => <li key={i}>{n}</li>)}</ul> : null}
        </Section>
      ) : null}
      {rollback ? (
        <Section title={rollback.mode === 'down' ? 'Rollback report' : 'Restore report'} id="rollback-report">
          <p><Status status={rollback.outcome} /> <span class="muted">asked by {rollback.requestedBy}, approved by {rollback.approvedBy}; <Time iso={rollback.startedAt} /> to <Time iso={rollback.finishedAt} /></span></p>
          <p>Reason: {rollback.reason}</p>
          {rollback.reverted.length ? <ul>{rollback.reverted.map((m) => <li key={m.name}>Reverted <span class="mono">{m.name}</span> in {duration(m.durationMs)}</li>)}</ul> : null}
          {rollback.backupId ? <p>Backup restored: <span class="mono">{rollback.backupId}</span></p> : null}
          <ul>{rollback.checks.map((c) => <li key={c.id}><Status status={c.status} /> {c.id}: {c.detail}</li>)}</ul>
          {rollback.failure ? <p class="error">{rollback.failure.code}: {rollback.failure.message}</p> : null}
          {rollback.notes.length ? <ul>{rollback.notes.map((n, i) => <li key={i}>{n}</li>)}</ul> : null}
        </Section>
      ) : null}
    </>
  );
}

export function RunLog({ text }: { text: string }) {
  return (
    <Section title="Apply log" id="log">
      {text.trim() ? <pre class="code log" tabIndex={0} aria-label="Apply log">{text}</pre> : <p class="muted">Nothing logged yet.</p>}
    </Section>
  );
}
