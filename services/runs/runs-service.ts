import { createHash } from 'node:crypto';
import { exec, maybeOne, one, rows, transaction } from '../../database/db.js';
import { isPgError, UNIQUE_VIOLATION } from '../../database/pg-errors.js';
import { bindIdempotencyKey, claimIdempotencyKey, selectIdempotencyKey } from '../../database/sql/idempotency.js';
import { activeRunFor, insertRun, listRuns, selectRunView, type RunRow } from '../../database/sql/runs.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { badRequest, conflict, forbidden, notFound, unprocessable } from '../errors.js';
import { computePending, readAppliedMigrations, readMigrationFiles } from '../migrations/pending.js';
import { sealPendingSet } from '../migrations/seal.js';
import { hasRole, sameSubject, type Principal } from '../principal.js';
import { presentRun, type ApiRun } from './present.js';
import { ACTIVE_STATUSES, type RunStatus } from './state-machine.js';
import { lockRunForUpdate, transition } from './transition.js';
import { refuseAt } from '../scheduler/policy.js';
import { activeRunConflict as activeConflict } from './active-conflict.js';

export interface CreateRunInput {
  environment: string;
  description: string;
  ticket?: string;
  to?: string;
  schedule?: { mode: 'window' | 'now' | 'at'; at?: string };
}

export interface CreateRunResult {
  run: ApiRun;
  /** False when an Idempotency-Key replayed an earlier request. */
  created: boolean;
}

export interface ListRunsInput {
  environment?: string;
  status?: string;
  limit?: number;
  cursor?: string;
}

const CANCELLABLE: RunStatus[] = ['created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled'];

function encodeCursor(seq: string): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^seq:(\d{1,18})$/.exec(text);
  if (!match) throw badRequest('"cursor" is not a cursor this API returned; pass nextCursor from the previous page.', { errors: [{ path: 'querystring/cursor', message: 'is invalid' }] });
  return match[1]!;
}

function requestHash(input: CreateRunInput): string {
  const canonical = JSON.stringify({
    environment: input.environment,
    description: input.description,
    ticket: input.ticket ?? null,
    to: input.to ?? null,
    schedule: input.schedule ? { mode: input.schedule.mode, at: input.schedule.at ?? null } : null,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

export interface RunsServiceDeps extends ServiceContext {
  /** Called after a run is committed, to start its preflight in the background. */
  onCreated: (runId: string) => void;
}

export function createRunsService(ctx: RunsServiceDeps) {
  const { control, config, targets } = ctx;

  function environment(name: string): EnvironmentConfig {
    const env = config.environments[name];
    if (!env) {
      throw unprocessable(`Unknown environment "${name}"; configured: ${Object.keys(config.environments).join(', ')}.`, {
        errors: [{ path: 'body/environment', message: 'is not a configured environment' }],
      });
    }
    return env;
  }

  async function get(id: string): Promise<ApiRun> {
    const row = await maybeOne<RunRow>(control, selectRunView(id));
    if (!row) throw notFound(`Run ${id} does not exist.`);
    return presentRun(row);
  }

  async function activeRunConflict(envName: string): Promise<never> {
    throw await activeConflict(control, envName, 'finish or cancel it first.');
  }

  async function replay(subject: string, key: string, hash: string): Promise<CreateRunResult | undefined> {
    const existing = await maybeOne<{ request_hash: string; run_id: string | null }>(control, selectIdempotencyKey(subject, key));
    if (!existing) return undefined;
    if (existing.request_hash !== hash) {
      throw unprocessable(`Idempotency-Key "${key}" was already used with a different request body; use a new key for a new request.`);
    }
    if (!existing.run_id) return undefined;
    return { run: await get(existing.run_id), created: false };
  }

  function validateSchedule(schedule: CreateRunInput['schedule'], env: EnvironmentConfig): Date | null {
    if (!schedule || schedule.mode !== 'at') {
      if (schedule?.at !== undefined) throw unprocessable('"schedule.at" is only allowed with mode "at".', { errors: [{ path: 'body/schedule/at', message: 'only allowed with mode "at"' }] });
      return null;
    }
    if (!schedule.at) throw unprocessable('"schedule.at" is required with mode "at".', { errors: [{ path: 'body/schedule/at', message: 'is required' }] });
    const at = new Date(schedule.at);
    if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
      throw unprocessable('"schedule.at" must be a future ISO 8601 time.', { errors: [{ path: 'body/schedule/at', message: 'must be in the future' }] });
    }
    const refused = refuseAt(env, at);
    if (refused) {
      throw unprocessable(`"schedule.at" ${at.toISOString()} ${refused}; pick a time inside a window of ${env.name} (GET /v1/environments/${env.name}/windows).`, { errors: [{ path: 'body/schedule/at', message: refused }] });
    }
    return at;
  }

  async function create(input: CreateRunInput, principal: Principal, idempotencyKey?: string): Promise<CreateRunResult> {
    const env = environment(input.environment);
    const scheduledFor = validateSchedule(input.schedule, env);
    const hash = requestHash(input);
    if (idempotencyKey) {
      const replayed = await replay(principal.subject, idempotencyKey, hash);
      if (replayed) return replayed;
    }
    // A concurrent request with the same key may have committed the run since
    // the replay check above: that run is this request's answer, not a conflict.
    const conflictOrReplay = async (): Promise<CreateRunResult> => {
      if (idempotencyKey) {
        const replayed = await replay(principal.subject, idempotencyKey, hash);
        if (replayed) return replayed;
      }
      return activeRunConflict(env.name);
    };
    // Cheap early answer; the partial unique index below is what actually decides.
    const active = await maybeOne<{ id: string }>(control, activeRunFor(env.name, ACTIVE_STATUSES));
    if (active) return conflictOrReplay();

    const files = await readMigrationFiles(env);
    const applied = await targets.withClient(env, (client) => readAppliedMigrations(client, env));
    // The digest preflight will seal (migrations and the modules they import); preflight reports what cannot be sealed.
    const { set: { pending, digest } } = await sealPendingSet(env, computePending(files, applied, env.name, input.to));
    if (pending.length === 0) throw unprocessable(`Nothing to apply: ${env.name} has every migration in its directory applied.`);

    let runId: string;
    try {
      const outcome = await transaction(control, async (client) => {
        if (idempotencyKey) {
          const claimed = await maybeOne(client, claimIdempotencyKey(principal.subject, idempotencyKey, hash));
          if (!claimed) return { replay: true as const };
        }
        const { id } = await one<{ id: string }>(client, insertRun({
          environment: env.name,
          status: 'created',
          description: input.description,
          ticket: input.ticket ?? null,
          requestedBy: principal.subject,
          to: input.to ?? null,
          schedule: input.schedule ?? { mode: 'window' },
          scheduledFor,
          migrations: pending.map((m) => ({ name: m.name, sha256: m.sha256 })),
          digest,
          requiredApprovals: env.approvals.required,
        }));
        await appendEvent(client, {
          runId: id,
          environment: env.name,
          type: 'run.created',
          actor: principal.subject,
          to: 'created',
          details: { description: input.description, ticket: input.ticket ?? null, to: input.to ?? null, digest, migrations: pending.map((m) => m.name) },
        });
        if (idempotencyKey) await exec(client, bindIdempotencyKey(principal.subject, idempotencyKey, id));
        return { replay: false as const, id };
      });
      if (outcome.replay) {
        const replayed = await replay(principal.subject, idempotencyKey!, hash);
        if (!replayed) throw conflict(`A request with Idempotency-Key "${idempotencyKey}" is still in progress; retry shortly.`);
        return replayed;
      }
      runId = outcome.id;
    } catch (err) {
      if (isPgError(err, UNIQUE_VIOLATION) && err.constraint === 'runs_one_active_per_environment') return conflictOrReplay();
      throw err;
    }
    ctx.onCreated(runId);
    return { run: await get(runId), created: true };
  }

  async function list(input: ListRunsInput): Promise<{ items: ApiRun[]; nextCursor: string | null }> {
    const limit = input.limit ?? 20;
    if (input.environment !== undefined && !config.environments[input.environment]) {
      throw badRequest(`Unknown environment "${input.environment}".`, { errors: [{ path: 'querystring/environment', message: 'is not a configured environment' }] });
    }
    const page = await rows<RunRow>(control, listRuns({
      environment: input.environment,
      status: input.status,
      beforeSeq: input.cursor ? decodeCursor(input.cursor) : undefined,
      limit: limit + 1,
    }));
    const items = page.slice(0, limit);
    const nextCursor = page.length > limit ? encodeCursor(items[items.length - 1]!.seq) : null;
    return { items: items.map(presentRun), nextCursor };
  }

  async function cancel(id: string, principal: Principal, reason?: string): Promise<ApiRun> {
    await transaction(control, async (client) => {
      const run = await lockRunForUpdate(client, id);
      if (!hasRole(principal, 'operator') && !sameSubject(run.requested_by, principal.subject)) {
        throw forbidden(`Only the requester (${run.requested_by}) or an operator may cancel run ${id}.`);
      }
      await transition(client, run, 'cancelled', { actor: principal.subject, expect: CANCELLABLE, details: { reason: reason ?? null } });
    });
    return get(id);
  }

  return { get, create, list, cancel, environment };
}

export type RunsService = ReturnType<typeof createRunsService>;
