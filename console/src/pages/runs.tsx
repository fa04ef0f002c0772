import { useState } from 'preact/hooks';
import { enc, getJson, postJson } from '../api/client.js';
import type { Environment, Run, Waiting } from '../api/types.js';
import { ActionResult, ErrorNote, Field, Loading, Section, Status, TableWrap, Time, useAction } from '../components/ui.js';
import { label, RUN_STATUSES } from '../lib/format.js';
import { href, navigate } from '../lib/router.js';
import { useDebounced, useResource } from '../lib/use-resource.js';
import { useLive } from '../lib/use-live.js';
import { useSession } from '../session-context.js';

const PAGE_SIZE = 20;

function approvalsSummary(run: Run): string {
  const approved = run.approvals.filter((a) => a.current && a.decision === 'approve').map((a) => `${a.role} ${a.subject}`);
  return `${approved.length}/${run.requiredApprovals.length}${approved.length ? `: ${approved.join(', ')}` : ''}`;
}

function WaitingForMe({ reloadKey }: { reloadKey: number }) {
  const waiting = useResource(() => getJson<Waiting>('/v1/me/waiting'), [reloadKey]);
  const { me } = useSession();
  if (me.can.approveAs.length === 0 && !me.can.approveRollback) return null;
  const total = (waiting.data?.approvals.length ?? 0) + (waiting.data?.rollbacks.length ?? 0);
  return (
    <Section title="Waiting for you" id="waiting">
      <ErrorNote error={waiting.error} what="Could not load what waits for you" />
      {!waiting.data ? <Loading what="approvals" /> : total === 0 ? <p class="muted">Nothing waits for your approval.</p> : (
        <ul class="plain">
          {waiting.data.approvals.map(({ run, asRoles }) => (
            <li key={run.id}>
              <a href={href(`/runs/${run.id}`)}>{run.description}</a>{' '}
              <span class="muted">— {run.environment}, requested by {run.requestedBy}; you may approve as {asRoles.join(' or ')}</span>
            </li>
          ))}
          {waiting.data.rollbacks.map(({ run, request }) => (
            <li key={request.id}>
              <a href={href(`/runs/${run.id}`)}>{run.description}</a>{' '}
              <span class="muted">— {request.mode === 'down' ? 'rollback' : 'restore'} of {run.environment} asked by {request.requestedBy}: {request.reason}</span>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function NewRun({ environments }: { environments: Environment[] }) {
  const action = useAction();
  const [env, setEnv] = useState(environments[0]?.name ?? '');
  const [description, setDescription] = useState('');
  const [ticket, setTicket] = useState('');
  const [mode, setMode] = useState('window');
  return (
    <Section title="New run" id="new-run">
      <form
        class="grid-form"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            const run = await postJson<Run>('/v1/runs', {
              environment: env, description, ...(ticket.trim() ? { ticket: ticket.trim() } : {}), schedule: { mode },
            });
            navigate(`/runs/${run.id}`);
          });
        }}
      >
        <Field id="new-env" label="Environment">
          <select id="new-env" value={env} onChange={(e) => setEnv((e.target as HTMLSelectElement).value)}>
            {environments.map((e) => <option key={e.name} value={e.name}>{e.name} ({e.pending.length} pending)</option>)}
          </select>
        </Field>
        <Field id="new-description" label="Description">
          <input id="new-description" required maxLength={500} value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
        </Field>
        <Field id="new-ticket" label="Ticket (optional)">
          <input id="new-ticket" maxLength={100} value={ticket} onInput={(e) => setTicket((e.target as HTMLInputElement).value)} />
        </Field>
        <Field id="new-schedule" label="Schedule">
          <select id="new-schedule" value={mode} onChange={(e) => setMode((e.target as HTMLSelectElement).value)}>
            <option value="window">First window that fits</option>
            <option value="now">Next open window</option>
          </select>
        </Field>
        <div class="form-actions">
          <button type="submit" disabled={action.busy || !env}>Create run</button>
        </div>
      </form>
      <ActionResult action={action} what="Creating the run" />
    </Section>
  );
}

export function RunsPage({ query }: { query: URLSearchParams }) {
  const { me } = useSession();
  const environment = query.get('environment') ?? undefined;
  const status = query.get('status') ?? undefined;
  const cursor = query.get('cursor') ?? undefined;
  const back = query.get('back') ?? undefined; // cursors of newer pages, comma separated
  const [tick, setTick] = useState(0);
  const envs = useResource(() => getJson<Environment[]>('/v1/environments'), []);
  const runs = useResource(() => {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (environment) q.set('environment', environment);
    if (status) q.set('status', status);
    if (cursor) q.set('cursor', cursor);
    return getJson<{ items: Run[]; nextCursor: string | null }>(`/v1/runs?${q}`);
  }, [environment, status, cursor, tick]);
  const refresh = useDebounced(() => setTick((n) => n + 1), 700);
  useLive({ environment }, (e) => { if (e.runId && (e.to || e.type.startsWith('approval.') || e.type.startsWith('rollback.'))) refresh(); }, refresh);

  const setFilter = (key: 'environment' | 'status', value: string) =>
    navigate('/runs', { environment, status, [key]: value || undefined });
  const backList = back ? back.split(',') : [];

  return (
    <>
      <h1>Runs</h1>
      <WaitingForMe reloadKey={tick} />
      {me.can.createRun && envs.data ? <NewRun environments={envs.data} /> : null}
      <Section title={environment || status ? 'Runs (filtered)' : 'All runs'} id="runs">
        <form class="filters" onSubmit={(e) => e.preventDefault()}>
          <Field id="filter-env" label="Environment">
            <select id="filter-env" value={environment ?? ''} onChange={(e) => setFilter('environment', (e.target as HTMLSelectElement).value)}>
              <option value="">All</option>
              {(envs.data ?? []).map((e) => <option key={e.name} value={e.name}>{e.name}</option>)}
            </select>
          </Field>
          <Field id="filter-status" label="Status">
            <select id="filter-status" value={status ?? ''} onChange={(e) => setFilter('status', (e.target as HTMLSelectElement).value)}>
              <option value="">All</option>
              {RUN_STATUSES.map((s) => <option key={s} value={s}>{label(s)}</option>)}
            </select>
          </Field>
        </form>
        <ErrorNote error={runs.error} what="Could not load runs" />
        {!runs.data ? <Loading what="runs" /> : runs.data.items.length === 0 ? <p class="muted">No runs match.</p> : (
          <TableWrap label="Runs, newest first">
            <table>
              <caption class="sr-only">Runs, newest first</caption>
              <thead>
                <tr><th scope="col">Created</th><th scope="col">Environment</th><th scope="col">Status</th><th scope="col">Description</th><th scope="col">Requested by</th><th scope="col">Approvals</th></tr>
              </thead>
              <tbody>
                {runs.data.items.map((run) => (
                  <tr key={run.id}>
                    <td><Time iso={run.createdAt} /></td>
                    <td>{run.environment}</td>
                    <td><Status status={run.status} /></td>
                    <td><a href={href(`/runs/${enc(run.id)}`)}>{run.description}</a>{run.ticket ? <span class="muted"> ({run.ticket})</span> : null}</td>
                    <td>{run.requestedBy}</td>
                    <td>{approvalsSummary(run)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
        <nav class="pager" aria-label="Pages of runs">
          {cursor ? (
            <a href={href('/runs', { environment, status, cursor: backList.at(-1) || undefined, back: backList.slice(0, -1).join(',') || undefined })}>← Newer</a>
          ) : null}
          {runs.data?.nextCursor ? (
            <a href={href('/runs', { environment, status, cursor: runs.data.nextCursor, back: cursor ? [...backList, cursor].join(',') : backList.length ? backList.join(',') : undefined })}>Older →</a>
          ) : null}
        </nav>
      </Section>
    </>
  );
}
