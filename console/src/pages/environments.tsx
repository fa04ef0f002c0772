import { useState } from 'preact/hooks';
import { ApiError, enc, getJson, postJson } from '../api/client.js';
import type { Environment, EtlHealth, Span } from '../api/types.js';
import { ActionResult, ErrorNote, Field, Loading, Section, Status, TableWrap, Time, useAction } from '../components/ui.js';
import { count, duration } from '../lib/format.js';
import { href } from '../lib/router.js';
import { useDebounced, useResource } from '../lib/use-resource.js';
import { useLive } from '../lib/use-live.js';
import { useSession } from '../session-context.js';
import { CalendarStrip } from './calendar-strip.js';

function EtlPanel({ env, reloadKey }: { env: Environment; reloadKey: number }) {
  const { me } = useSession();
  const [tick, setTick] = useState(0);
  const health = useResource(() => getJson<EtlHealth>(`/v1/etl/health?environment=${enc(env.name)}`), [env.name, reloadKey, tick]);
  const action = useAction();
  const [reason, setReason] = useState('');
  const h = health.data;
  const toggle = (what: 'pause' | 'resume') => action.run(async () => {
    await postJson(`/v1/etl/${what}`, { environment: env.name, reason: reason.trim() });
    setReason('');
    setTick((n) => n + 1);
    return what === 'pause' ? 'ETL workers paused.' : 'ETL workers resumed.';
  });
  const unavailable = health.error instanceof ApiError && [404, 409, 422, 503].includes(health.error.status);
  return (
    <div class="etl">
      <h3>ETL health</h3>
      {unavailable ? <p class="muted">No ETL health here: {(health.error as ApiError).detail}</p> : <ErrorNote error={health.error} what="Could not load ETL health" />}
      {h ? (
        <>
          <dl class="facts">
            <dt>Workers</dt><dd>{h.paused ? <strong>paused{h.pausedBy ? ` by ${h.pausedBy}` : ''}{h.pauseReason ? `: ${h.pauseReason}` : ''}</strong> : 'running'}</dd>
            <dt>Backlog</dt><dd>{count(h.backlog)} snapshots, oldest {duration(h.oldestUnprocessedAgeSeconds * 1000)}</dd>
            <dt>Last hour</dt><dd>{count(h.processedLastHour)} processed, {count(h.failedLastHour)} failed</dd>
          </dl>
          {h.recentErrors.length ? (
            <details><summary>Recent errors ({h.recentErrors.length})</summary>
              <ul class="plain small">{h.recentErrors.map((e) => <li key={e.id}><Time iso={e.createdAt} /> {e.errorType}: {e.message}</li>)}</ul>
            </details>
          ) : null}
          {me.can.controlEtl ? (
            <form onSubmit={(e) => { e.preventDefault(); if (reason.trim()) void toggle(h.paused ? 'resume' : 'pause'); }}>
              <Field id={`etl-reason-${env.name}`} label={`Reason to ${h.paused ? 'resume' : 'pause'} the ${env.name} ETL`}>
                <input id={`etl-reason-${env.name}`} required maxLength={500} value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
              </Field>
              <div class="form-actions"><button type="submit" class="secondary" disabled={action.busy || !reason.trim()}>{h.paused ? 'Resume ETL workers' : 'Pause ETL workers'}</button></div>
              <ActionResult action={action} what="ETL control" />
            </form>
          ) : null}
        </>
      ) : health.loading ? <Loading what="ETL health" /> : null}
    </div>
  );
}

function EnvironmentCard({ env, reloadKey }: { env: Environment; reloadKey: number }) {
  const windows = useResource(() => getJson<Span[]>(`/v1/environments/${enc(env.name)}/windows?count=30`), [env.name, reloadKey]);
  return (
    <Section title={env.name} id={`env-${env.name}`}>
      <dl class="facts">
        <dt>Target</dt><dd>{env.reachable ? `reachable; migrations in ${env.migrationsTable}` : <span class="error">{env.error ?? 'unreachable'}</span>}</dd>
        <dt>Approvals</dt><dd>{env.requiredApprovals.join(' + ')}</dd>
        <dt>Active run</dt><dd>{env.activeRun ? <><a href={href(`/runs/${env.activeRun.id}`)}>{env.activeRun.id.slice(0, 8)}</a> <Status status={env.activeRun.status} /></> : 'none'}</dd>
        <dt>Window</dt>
        <dd>
          {env.activeFreeze ? <strong>Frozen until <Time iso={env.activeFreeze.to} />: {env.activeFreeze.reason}</strong>
            : env.windowOpen ? (env.currentWindow ? <>open until <Time iso={env.currentWindow.end} /></> : 'no windows: open any time outside freezes')
            : <>closed{env.nextWindow ? <>; next opens <Time iso={env.nextWindow.start} /></> : null}</>}
        </dd>
      </dl>
      <ErrorNote error={windows.error} what="Could not load windows" />
      {windows.data ? <CalendarStrip env={env} windows={windows.data} /> : null}
      <h3>Pending migrations ({env.pending.length})</h3>
      {env.pending.length === 0 ? <p class="muted">Up to date ({env.applied.length} applied).</p> : (
        <TableWrap label={`Pending migrations of ${env.name}`}>
          <table>
            <thead><tr><th scope="col">Migration</th><th scope="col">sha256</th></tr></thead>
            <tbody>{env.pending.map((m) => <tr key={m.name}><td class="mono">{m.name}</td><td class="mono small">{m.sha256.slice(0, 16)}…</td></tr>)}</tbody>
          </table>
        </TableWrap>
      )}
      {env.configured && env.reachable ? <EtlPanel env={env} reloadKey={reloadKey} /> : null}
    </Section>
  );
}

export function EnvironmentsPage() {
  const [tick, setTick] = useState(0);
  const envs = useResource(() => getJson<Environment[]>('/v1/environments'), [tick]);
  const refresh = useDebounced(() => setTick((n) => n + 1), 1000);
  useLive({}, (e) => { if (e.to || e.type.startsWith('etl.')) refresh(); }, refresh);
  return (
    <>
      <h1>Environments</h1>
      <ErrorNote error={envs.error} what="Could not load environments" />
      {!envs.data ? <Loading what="environments" /> : envs.data.map((env) => <EnvironmentCard key={env.name} env={env} reloadKey={tick} />)}
    </>
  );
}
