import { useEffect, useState } from 'preact/hooks';
import { enc, getJson, postJson } from '../api/client.js';
import type { BackfillFailure, BackfillJob, Environment } from '../api/types.js';
import { ActionResult, ErrorNote, Field, Loading, Section, Status, TableWrap, Time, useAction } from '../components/ui.js';
import { count } from '../lib/format.js';
import { navigate } from '../lib/router.js';
import { useDebounced, useResource } from '../lib/use-resource.js';
import { useLive } from '../lib/use-live.js';
import { useSession } from '../session-context.js';

const STATUSES = ['pending', 'running', 'paused', 'succeeded', 'failed', 'cancelled'];
const ACTIVE = ['pending', 'running', 'paused'];

function Failures({ job }: { job: BackfillJob }) {
  const failures = useResource(() => getJson<{ items: BackfillFailure[] }>(`/v1/backfills/${enc(job.id)}/failures?limit=50`), [job.id, job.rowsFailed]);
  return (
    <div>
      <ErrorNote error={failures.error} what="Could not load failures" />
      {!failures.data ? <Loading what="failures" /> : failures.data.items.length === 0 ? <p class="muted">No failed rows.</p> : (
        <ul class="plain small">
          {failures.data.items.map((f) => <li key={f.id}><span class="mono">key {f.key}</span>{f.sqlstate ? ` (SQLSTATE ${f.sqlstate})` : ''}: {f.error}{f.resolvedBy ? ' — fixed by a later job' : ''}</li>)}
        </ul>
      )}
    </div>
  );
}

function Controls({ job, onDone }: { job: BackfillJob; onDone(): void }) {
  const action = useAction();
  const [reason, setReason] = useState('');
  const act = (what: 'pause' | 'resume' | 'cancel') => action.run(async () => {
    await postJson<BackfillJob>(`/v1/backfills/${enc(job.id)}/${what}`, reason.trim() ? { reason: reason.trim() } : {});
    setReason('');
    onDone();
    return `Job ${what === 'cancel' ? 'cancelled' : what === 'pause' ? 'paused' : 'resumed'}.`;
  });
  return (
    <form onSubmit={(e) => e.preventDefault()} aria-label={`Control ${job.name}`}>
      <Field id={`bf-reason-${job.id}`} label="Reason (optional)">
        <input id={`bf-reason-${job.id}`} maxLength={500} value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      </Field>
      <div class="form-actions">
        {job.status === 'paused'
          ? <button type="button" disabled={action.busy} onClick={() => void act('resume')}>Resume</button>
          : <button type="button" class="secondary" disabled={action.busy} onClick={() => void act('pause')}>Pause</button>}
        <button type="button" class="danger" disabled={action.busy} onClick={() => void act('cancel')}>Cancel job</button>
      </div>
      <ActionResult action={action} what={`Controlling ${job.name}`} />
    </form>
  );
}

export function BackfillsPage({ query }: { query: URLSearchParams }) {
  const { me } = useSession();
  const environment = query.get('environment') ?? undefined;
  const status = query.get('status') ?? undefined;
  const [tick, setTick] = useState(0);
  const envs = useResource(() => getJson<Environment[]>('/v1/environments'), []);
  const jobs = useResource(() => {
    const q = new URLSearchParams({ limit: '50' });
    if (environment) q.set('environment', environment);
    if (status) q.set('status', status);
    return getJson<{ items: BackfillJob[] }>(`/v1/backfills?${q}`);
  }, [environment, status, tick]);
  const refresh = useDebounced(() => setTick((n) => n + 1), 700);
  useLive({ environment }, (e) => { if (e.type.startsWith('backfill.')) refresh(); }, refresh);
  // Progress and rate change with every batch, which is not an audit event: refresh while a job runs.
  const running = jobs.data?.items.some((j) => ACTIVE.includes(j.status)) ?? false;
  useEffect(() => {
    if (!running) return undefined;
    const timer = window.setInterval(() => setTick((n) => n + 1), 3000);
    return () => window.clearInterval(timer);
  }, [running]);
  const setFilter = (key: 'environment' | 'status', value: string) => navigate('/backfills', { environment, status, [key]: value || undefined });

  return (
    <>
      <h1>Backfills</h1>
      <Section title="Jobs" id="jobs">
        <form class="filters" onSubmit={(e) => e.preventDefault()}>
          <Field id="bf-env" label="Environment">
            <select id="bf-env" value={environment ?? ''} onChange={(e) => setFilter('environment', (e.target as HTMLSelectElement).value)}>
              <option value="">All</option>
              {(envs.data ?? []).map((e) => <option key={e.name} value={e.name}>{e.name}</option>)}
            </select>
          </Field>
          <Field id="bf-status" label="Status">
            <select id="bf-status" value={status ?? ''} onChange={(e) => setFilter('status', (e.target as HTMLSelectElement).value)}>
              <option value="">All</option>
              {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
            </select>
          </Field>
        </form>
        <ErrorNote error={jobs.error} what="Could not load backfill jobs" />
        {!jobs.data ? <Loading what="backfill jobs" /> : jobs.data.items.length === 0 ? <p class="muted">No backfill jobs. Operators start them with <code>sfm backfills start</code> or POST /v1/backfills.</p> : (
          <TableWrap label="Backfill jobs">
            <table>
              <thead><tr><th scope="col">Job</th><th scope="col">Status</th><th scope="col">Progress</th><th scope="col">Rate</th><th scope="col">Failures</th><th scope="col">Started</th></tr></thead>
              <tbody>
                {jobs.data.items.map((job) => (
                  <tr key={job.id}>
                    <td>
                      <strong>{job.name}</strong> <span class="muted">({job.environment}, {job.table}, by {job.createdBy})</span>
                      {job.waiting ? <div class="muted small">Waiting: {job.waiting}</div> : null}
                      {job.lastError ? <div class="error small">{job.lastError}</div> : null}
                      <details>
                        <summary>Failed rows and controls</summary>
                        <Failures job={job} />
                        {me.can.controlBackfills && ACTIVE.includes(job.status) ? <Controls job={job} onDone={() => setTick((n) => n + 1)} /> : null}
                      </details>
                    </td>
                    <td><Status status={job.status} /></td>
                    <td>
                      <progress max={1} value={job.progress ?? 0} aria-label={`${job.name} progress`}>{Math.round((job.progress ?? 0) * 100)}%</progress>{' '}
                      {job.progress === null ? '—' : `${Math.round(job.progress * 100)}%`}
                      <div class="muted small">{count(job.rowsDone)} rows done{job.remainingRows !== null ? `, ${count(job.remainingRows)} left` : ''}</div>
                    </td>
                    <td>{job.rowsPerSecond === null ? '—' : `${count(Math.round(job.rowsPerSecond))}/s`}{job.maxRowsPerSecond ? <div class="muted small">cap {count(job.maxRowsPerSecond)}/s</div> : null}</td>
                    <td>{count(job.rowsFailed)}{job.openFailures ? <div class="muted small">{count(job.openFailures)} open</div> : null}</td>
                    <td><Time iso={job.startedAt} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Section>
    </>
  );
}
