import type { Command } from 'commander';
import { ApiError } from '../errors.js';
import { action, type Runtime } from '../context.js';
import { block, indent, table, time, truncate } from '../format.js';
import { textParser } from '../values.js';
// The API's own types (type-only: nothing of the service is loaded at run time).
import type { EtlControlState } from '../../../services/etl/control.js';
import type { EtlHealth } from '../../../services/etl/health.js';

function showHealth(h: EtlHealth): string {
  const head = block([
    ['environment', h.environment],
    ['state', h.paused ? `paused by ${h.pausedBy ?? '?'}${h.pauseReason ? ` (${h.pauseReason})` : ''} since ${time(h.changedAt)}` : 'running'],
    ['backlog', `${h.backlog} unprocessed, oldest ${Math.round(h.oldestUnprocessedAgeSeconds)} s`],
    ['last hour', `${h.processedLastHour} processed, ${h.failedLastHour} failed`],
  ]);
  const errors = h.recentErrors.length
    ? `recent errors:\n${indent(table(['AT', 'TYPE', 'MESSAGE'], h.recentErrors.map((e) => [time(e.createdAt), e.errorType, truncate(e.message, 80)])))}`
    : '';
  return head + errors;
}

export function etlCommands(rt: Runtime, parent: Command): void {
  const etl = parent.command('etl').description('the ETL workers of an environment: health, pause, resume');

  etl
    .command('health')
    .description('backlog, oldest unprocessed age, last hour processed/failed, recent errors, pause flag')
    .option('--environment <env>', 'one environment (default: every configured one; --json then prints an array)')
    .action(action(rt, (opts: { environment?: string }) => async (s) => {
      if (opts.environment) {
        const health = await s.client.get<EtlHealth>('/v1/etl/health', { environment: opts.environment });
        return s.print(health, () => showHealth(health));
      }
      const envs = await s.client.get<Array<{ name: string; configured: boolean }>>('/v1/environments');
      // One environment without ETL tables (a 409) must not hide the others: its error is its row.
      const all: Array<EtlHealth | { environment: string; error: string }> = [];
      for (const env of envs.filter((e) => e.configured)) {
        try {
          all.push(await s.client.get<EtlHealth>('/v1/etl/health', { environment: env.name }));
        } catch (err) {
          if (!(err instanceof ApiError) || err.status === 401 || err.status === 403) throw err;
          all.push({ environment: env.name, error: `${err.status} ${err.detail}` });
        }
      }
      s.print(all, () => all.map((h) => ('error' in h ? `environment  ${h.environment}\nerror        ${h.error}\n` : showHealth(h))).join('\n') || 'no configured environments\n');
    }));

  for (const verb of ['pause', 'resume'] as const) {
    etl
      .command(verb)
      .description(verb === 'pause' ? "pause the environment's ETL workers (operator)" : "resume the environment's ETL workers (operator)")
      .requiredOption('--environment <env>', 'environment name')
      .requiredOption('--reason <text>', 'why (kept in the audit trail)', textParser(500))
      .action(action(rt, (opts: { environment: string; reason: string }) => async (s) => {
        const state = await s.client.post<EtlControlState>(`/v1/etl/${verb}`, { environment: opts.environment, reason: opts.reason });
        s.print(state, () => `ETL of ${state.environment} ${state.paused ? 'paused' : 'running'}` +
          `${state.changed ? '' : ' (already; nothing changed)'}${state.paused && state.pausedBy ? `, by ${state.pausedBy}` : ''}\n`);
      }));
  }
}
