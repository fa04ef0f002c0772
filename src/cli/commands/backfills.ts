import type { Command } from 'commander';
import { action, enc, type Runtime } from '../context.js';
import { block, table, time } from '../format.js';
import { intParser } from '../values.js';

// Backfill jobs. The API side is young: only the fields named in its contract
// are relied on, and anything else the service returns is shown as it comes.

type Backfill = Record<string, unknown> & { id?: string; status?: string };

const str = (v: unknown): string => (v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));

function showBackfill(b: Backfill): string {
  return block(Object.entries(b).map(([k, v]) => [k, /At$/.test(k) && typeof v === 'string' ? time(v) : str(v)]));
}

function listOf(body: unknown): Backfill[] {
  if (Array.isArray(body)) return body as Backfill[];
  const items = (body as { items?: unknown } | null)?.items;
  return Array.isArray(items) ? (items as Backfill[]) : [];
}

export function backfillCommands(rt: Runtime, parent: Command): void {
  const backfills = parent.command('backfills').description('throttled data backfills: start, list, show, pause, resume, cancel');

  backfills
    .command('start')
    .description('start a named backfill in an environment')
    .requiredOption('--environment <env>', 'environment name')
    .requiredOption('--name <name>', 'the backfill to run')
    .option('--batch-size <n>', 'rows per batch', intParser(rt, 1, 100_000))
    .option('--max-rows-per-second <n>', 'throttle', intParser(rt, 1, 1_000_000))
    .option('--window-only', 'run only inside maintenance windows')
    .action(action(rt, (opts: { environment: string; name: string; batchSize?: number; maxRowsPerSecond?: number; windowOnly?: boolean }) => {
      const body = {
        environment: opts.environment,
        name: opts.name,
        ...(opts.batchSize !== undefined && { batchSize: opts.batchSize }),
        ...(opts.maxRowsPerSecond !== undefined && { maxRowsPerSecond: opts.maxRowsPerSecond }),
        ...(opts.windowOnly && { windowOnly: true }),
      };
      return async (s) => {
        const job = await s.client.post<Backfill>('/v1/backfills', body);
        s.print(job, () => `Started backfill ${str(job.id)} status=${str(job.status)}\n`);
      };
    }));

  backfills
    .command('list')
    .description('list backfills')
    .option('--environment <env>', 'only this environment')
    .action(action(rt, (opts: { environment?: string }) => async (s) => {
      const body = await s.client.get<unknown>('/v1/backfills', { environment: opts.environment });
      const items = listOf(body);
      s.print(body, () => (items.length
        ? table(['ID', 'ENVIRONMENT', 'NAME', 'STATUS', 'CREATED'], items.map((b) => [str(b.id), str(b.environment), str(b.name), str(b.status), time(b.createdAt as string | undefined)]))
        : 'no backfills\n'));
    }));

  backfills
    .command('show')
    .description('one backfill')
    .argument('<id>', 'backfill id')
    .action(action(rt, (id: string) => async (s) => {
      const job = await s.client.get<Backfill>(`/v1/backfills/${enc(id)}`);
      s.print(job, () => showBackfill(job));
    }));

  for (const verb of ['pause', 'resume', 'cancel'] as const) {
    backfills
      .command(verb)
      .description(`${verb} a backfill`)
      .argument('<id>', 'backfill id')
      .action(action(rt, (id: string) => async (s) => {
        const job = await s.client.post<Backfill>(`/v1/backfills/${enc(id)}/${verb}`, {});
        s.print(job, () => `Backfill ${str(job.id ?? id)} status=${str(job.status)}\n`);
      }));
  }
}
