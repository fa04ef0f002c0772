import { maybeOne } from '../database/db.js';
import { activeRunFor } from '../database/sql/runs.js';
import type { EnvironmentConfig } from '../src/config/environments.js';
import type { ServiceContext } from './context.js';
import { notFound, ServiceError } from './errors.js';
import { computePending, readAppliedMigrations, readMigrationFiles } from './migrations/pending.js';
import { ACTIVE_STATUSES } from './runs/state-machine.js';

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
  activeRun: { id: string; status: string } | null;
  windows: Array<{ cron: string; durationMinutes: number; timezone: string }>;
  freezes: Array<{ from: string; to: string; reason: string }>;
  activeFreeze: { from: string; to: string; reason: string } | null;
}

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
      activeRun: (await maybeOne<{ id: string; status: string }>(control, activeRunFor(env.name, ACTIVE_STATUSES))) ?? null,
      windows: env.windows,
      freezes,
      activeFreeze: active ? { from: active.from.toISOString(), to: active.to.toISOString(), reason: active.reason } : null,
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

  async function list(): Promise<EnvironmentState[]> {
    return Promise.all(Object.values(config.environments).map((env) => describe(env)));
  }

  async function get(name: string): Promise<EnvironmentState> {
    const env = config.environments[name];
    if (!env) throw notFound(`Unknown environment "${name}".`);
    return describe(env);
  }

  return { list, get };
}

export type EnvironmentsService = ReturnType<typeof createEnvironmentsService>;
