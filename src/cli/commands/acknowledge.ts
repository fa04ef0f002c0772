import { Command, InvalidArgumentError } from 'commander';
import type { ApiAcknowledgement } from '../../../services/preflight/api-acks.js';
import { action, enc, type Runtime } from '../context.js';
import { UsageError } from '../errors.js';
import { table, time, truncate, type Run } from '../format.js';
import { textParser } from '../values.js';

// The API's shape (GET/POST /v1/runs/:id/acknowledgements).
type Acknowledgement = ApiAcknowledgement;

const FINDING_ID = /^[0-9a-f]{16}$/;

function findingParser(value: string): string {
  if (!FINDING_ID.test(value)) throw new InvalidArgumentError("a finding's id: 16 hex digits, as the preflight report gives it (sfm runs preflight <id>)");
  return value;
}

/**
 * `sfm runs ack <id>`: an approver accepts a preflight finding for the run's
 * digest (POST /v1/runs/:id/acknowledgements), instead of editing the
 * migration file; `--list` shows the run's acknowledgements.
 */
export function acknowledgeCommand(rt: Runtime, runs: Command): void {
  runs
    .command('ack')
    .description("accept one finding of the run's latest preflight (engineering, sre or admin; never the run's requester), or --list them")
    .argument('<id>', 'run id')
    .option('--finding <id>', "the finding's id (16 hex digits, from the preflight report)", findingParser)
    .option('--reason <text>', 'why the risk is accepted (audited, shown on the finding)', textParser(2000))
    .option('--list', "list the run's acknowledgements")
    .action(action(rt, (id: string, opts: { finding?: string; reason?: string; list?: boolean }) => {
      if (opts.list) {
        if (opts.finding !== undefined || opts.reason !== undefined) throw new UsageError('--list takes no --finding or --reason');
        return async (s) => {
          const { items } = await s.client.get<{ items: Acknowledgement[] }>(`/v1/runs/${enc(id)}/acknowledgements`);
          s.print(items, () => items.length
            ? table(['FINDING', 'RULE', 'MIGRATION', 'BY', 'ROLE', 'AT', 'REASON'], items.map((a) => [a.finding, a.rule, a.migration ?? '-', a.by, a.role, time(a.at), truncate(a.reason, 50)]))
            : `run ${id} has no acknowledgements\n`);
        };
      }
      if (opts.finding === undefined || !opts.reason?.trim()) throw new UsageError('say which finding and why: --finding <id> --reason <text> (or --list)');
      const body = { finding: opts.finding, reason: opts.reason };
      return async (s) => {
        const res = await s.client.post<{ acknowledgement: Acknowledgement; run: Run }>(`/v1/runs/${enc(id)}/acknowledgements`, body);
        const a = res.acknowledgement;
        s.print(res, () => `Acknowledged ${a.rule}${a.migration ? ` in ${a.migration}` : ''} (finding ${a.finding}) as ${a.role} ${a.by}, for digest ${a.digest.slice(0, 12)}: ${a.reason}\nrun ${res.run.id} status=${res.run.status}\n`);
      };
    }));
}
