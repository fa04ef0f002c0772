import { useState } from 'preact/hooks';
import { enc, getJson, getOptional, getText } from '../api/client.js';
import type { AuditEvent, Environment, PreflightReport, RollbackRequest, Run, RunReport } from '../api/types.js';
import { ErrorNote, Loading, Status, Time } from '../components/ui.js';
import { href } from '../lib/router.js';
import { useDebounced, useResource } from '../lib/use-resource.js';
import { useLive } from '../lib/use-live.js';
import { RunActions } from './run/actions.js';
import { Approvals } from './run/approvals.js';
import { Migrations, Preflight } from './run/preflight.js';
import { LIVE, LiveProgress, startsLive } from './run/progress.js';
import { RunLog, VerificationReport } from './run/report.js';
import { Rollback } from './run/rollback.js';
import { Timeline } from './run/timeline.js';

const APPLIED = ['applying', 'verifying', 'monitoring', 'succeeded', 'failed', 'verification_failed', 'degraded', 'interrupted', 'rolling_back', 'rolled_back', 'restoring', 'restored'];

export function RunPage({ id }: { id: string }) {
  const [tick, setTick] = useState(0);
  const reload = () => setTick((n) => n + 1);
  const base = `/v1/runs/${enc(id)}`;
  const run = useResource(() => getJson<Run>(base), [id, tick]);
  const events = useResource(() => getJson<AuditEvent[]>(`${base}/events`), [id, tick]);
  const status = run.data?.status;
  const preflight = useResource(() => getOptional<{ createdAt: string; report: PreflightReport }>(`${base}/preflight`), [id, status, tick]);
  const applied = status !== undefined && APPLIED.includes(status);
  const report = useResource(() => (applied ? getOptional<RunReport>(`${base}/report`) : Promise.resolve(null)), [id, status, applied]);
  const log = useResource(() => (applied ? getText(`${base}/logs`) : Promise.resolve('')), [id, status, tick, applied]);
  const rollbacks = useResource(() => getJson<RollbackRequest[]>(`${base}/rollback`), [id, tick]);
  const envs = useResource(() => getJson<Environment[]>('/v1/environments'), [id, status]);
  const [liveEvents, setLiveEvents] = useState<AuditEvent[]>([]);
  // Whether this page saw an apply or rollback under way (kept past its end).
  const [followedId, setFollowedId] = useState<string | null>(null);
  const followed = followedId === id;
  if (!followed && status !== undefined && LIVE.includes(status)) setFollowedId(id);

  const refresh = useDebounced(() => {
    setLiveEvents([]);
    reload();
  }, 400);
  const lastLoaded = events.data?.at(-1)?.id;
  useLive(events.data ? { run: id, after: lastLoaded ?? 0 } : null, (e) => {
    // The timeline and progress move at once; the run and its reports follow shortly.
    setLiveEvents((list) => (list.some((x) => x.id === e.id) ? list : [...list, e]));
    if (startsLive(e)) setFollowedId(id);
    if (!e.type.startsWith('notification.')) refresh();
  }, refresh);

  if (run.error && !run.data) return <><h1>Run</h1><ErrorNote error={run.error} what={`Could not load run ${id}`} /><p><a href={href('/runs')}>Back to runs</a></p></>;
  if (!run.data) return <Loading what="the run" />;
  const r = run.data;
  const allEvents = [...(events.data ?? []), ...liveEvents.filter((e) => !(events.data ?? []).some((x) => x.id === e.id))];
  const env = envs.data?.find((e) => e.name === r.environment);

  return (
    <article aria-labelledby="run-title">
      <p class="crumbs"><a href={href('/runs')}>Runs</a> / {r.environment}</p>
      <h1 id="run-title">{r.description}</h1>
      <dl class="facts">
        <dt>Status</dt><dd data-testid="run-status"><Status status={r.status} /></dd>
        <dt>Environment</dt><dd>{r.environment}</dd>
        <dt>Requested by</dt><dd>{r.requestedBy}{r.ticket ? ` for ${r.ticket}` : ''}</dd>
        <dt>Created</dt><dd><Time iso={r.createdAt} /></dd>
        {r.scheduledFor ? <><dt>Scheduled for</dt><dd><Time iso={r.scheduledFor} /></dd></> : null}
        <dt>Digest</dt><dd class="mono small">{r.digest}</dd>
        {r.backup ? <><dt>Backup</dt><dd class="mono small">{r.backup.id}{r.backup.verifiedAt ? ' (verified)' : ''}</dd></> : null}
      </dl>
      {r.error ? (
        <div class="failure" role="alert">
          <strong>{r.error.code}</strong>: {r.error.message}
          {r.error.statement ? <pre class="code small">{r.error.statement}</pre> : null}
        </div>
      ) : null}
      <ErrorNote error={run.error} what="Could not refresh the run" />
      <LiveProgress run={r} events={allEvents} followed={followed} />
      <RunActions run={r} env={env} onChange={reload} />
      <Approvals run={r} onChange={reload} />
      {report.data ? <VerificationReport report={report.data} /> : null}
      <Rollback run={r} requests={rollbacks.data} error={rollbacks.error} onChange={reload} />
      <Migrations run={r} report={preflight.data?.report ?? null} />
      {preflight.data ? <Preflight run={r} report={preflight.data.report} createdAt={preflight.data.createdAt} onChange={reload} /> : status === 'preflight_running' || status === 'created' ? <p class="muted" role="status">Preflight is running…</p> : null}
      <ErrorNote error={preflight.error} what="Could not load the preflight report" />
      <Timeline events={allEvents} />
      {applied ? <RunLog text={log.data ?? ''} /> : null}
    </article>
  );
}
