import { maybeOne } from '../database/db.js';
import { activeRunFor } from '../database/sql/runs.js';
import type { EnvironmentConfig } from './environments/model.js';
import type { ServiceContext } from './context.js';
import { notFound, ServiceError } from './errors.js';
import { computePending, readAppliedMigrations, readMigrationFiles } from './migrations/pending.js';
import { ACTIVE_STATUSES } from './runs/state-machine.js';
import { freezeAt, nextWindows, openWindowAt } from './windows/windows.js';

export interface EnvironmentState {
  name: string;
  databaseUrlEnv: string;
  configured: boolean;
  reachable: boolean;
  error: string | null;
  migrationsTable: string;
  applied: Array<{ name: string; runOn: string }>;
  pending: Array<{ name: string; sha256: string }>;
  requiredApprovals: string[];
  /** confirm: an approved run waits for an operator's confirmation; auto: the approval schedules it. */
  applyMode: 'confirm' | 'auto';
  /** Promotion: the environment whose succeeded run of the same digest a run here needs before approval. */
  requires: { environment: string } | null;
  activeRun: { id: string; status: string } | null;
  windows: Array<{ cron: string; durationMinutes: number; timezone: string }>;
  freezes: Array<{ from: string; to: string; reason: string }>;
  activeFreeze: { from: string; to: string; reason: string } | null;
  /** May an apply start now by the window policy (no windows: any time outside a freeze)? */
  windowOpen: boolean;
  /** The window open now, freezes cut out; null when none is (or no windows are configured). */
  currentWindow: { start: string; end: string } | null;
  /** The next window to open after now; null when no windows are configured (or none within the search bound). */
  nextWindow: { start: string; end: string } | null;
}

const span = (w: { start: Date; end: Date }) => ({ start: w.start.toISOString(), end: w.end.toISOString() });

export function createEnvironmentsService(ctx: ServiceContext) {
  const { config, control, targets } = ctx;

  async function describe(env: EnvironmentConfig, now = new Date()): Promise<EnvironmentState> {
    const freezes = env.freezes.map((f) => ({ from: f.from.toISOString(), to: f.to.toISOString(), reason: f.reason }));
    const active = env.freezes.find((f) => f.from <= now && now < f.to);
    const state: EnvironmentState = {
      name: env.name,
      databaseUrlEnv: env.databaseUrlEnv,
      configured: targets.isConfigured(env.name),
      reachable: false,
      error: null,
      migrationsTable: `${env.migrationsSchema}.${env.migrationsTable}`,
      applied: [],
      pending: [],
      requiredApprovals: env.approvals.required,
      applyMode: env.apply.mode,
      requires: env.requires,
      activeRun: (await maybeOne<{ id: string; status: string }>(control, activeRunFor(env.name, ACTIVE_STATUSES))) ?? null,
      windows: env.windows,
      freezes,
      activeFreeze: active ? { from: active.from.toISOString(), to: active.to.toISOString(), reason: active.reason } : null,
      ...windowState(env, now),
    };
    if (!state.configured) {
      state.error = `Not configured: set ${env.databaseUrlEnv}.`;
      return state;
    }
    try {
      const files = await readMigrationFiles(env);
      const applied = await targets.withClient(env, (client) => readAppliedMigrations(client, env));
      state.reachable = true;
      state.applied = applied;
      state.pending = computePending(files, applied, env.name).pending.map((m) => ({ name: m.name, sha256: m.sha256 }));
    } catch (err) {
      if (!(err instanceof ServiceError)) throw err;
      state.error = err.message;
    }
    return state;
  }

  function windowState(env: EnvironmentConfig, now: Date): Pick<EnvironmentState, 'windowOpen' | 'currentWindow' | 'nextWindow'> {
    if (env.windows.length === 0) return { windowOpen: freezeAt(env.freezes, now) === null, currentWindow: null, nextWindow: null };
    const current = openWindowAt(env.windows, env.freezes, now);
    const next = nextWindows(env.windows, env.freezes, now, 2).find((w) => w.start.getTime() > now.getTime());
    return { windowOpen: current !== null, currentWindow: current && span(current), nextWindow: next ? span(next) : null };
  }

  /** The next `count` windows of an environment from `now`, freezes cut out (the first may be open already). */
  function windows(name: string, count: number, now = new Date()): Array<{ start: string; end: string }> {
    const env = config.environments[name];
    if (!env) throw notFound(`Unknown environment "${name}".`);
    return nextWindows(env.windows, env.freezes, now, count).map(span);
  }

  async function list(): Promise<EnvironmentState[]> {
    return Promise.all(Object.values(config.environments).map((env) => describe(env)));
  }

  async function get(name: string): Promise<EnvironmentState> {
    const env = config.environments[name];
    if (!env) throw notFound(`Unknown environment "${name}".`);
    return describe(env);
  }

  return { list, get, windows };
}

export type EnvironmentsService = ReturnType<typeof createEnvironmentsService>;
