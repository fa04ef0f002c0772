import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { RUN_STATUSES } from '../../../services/runs/state-machine.js';
import { action, enc, globalsOf, type Runtime, type Session } from '../context.js';
import { ApiError, LocalError, RunEndedError, UsageError, WaitTimeoutError } from '../errors.js';
import { approvalsLine, block, eventRows, indent, runRows, showRun, table, time, truncate, type AuditEvent, type Run } from '../format.js';
import { choiceParser, durationParser, formatDuration, intParser, isoTimeParser, isPlaceholder, textParser } from '../values.js';
import { describeTarget, judge, parseWaitTarget, waitForRun, type WaitTarget } from '../wait.js';

/** --until: a named point or a comma-separated list of run statuses. */
function waitTargetParser(rt: { checking: boolean }) {
  return (value: string): WaitTarget => {
    if (rt.checking && isPlaceholder(value)) return 'done';
    const parsed = parseWaitTarget(value);
    if (typeof parsed === 'object' && 'error' in parsed) throw new InvalidArgumentError(parsed.error);
    return parsed;
  };
}
import { planText, type RollbackPlan } from '../plan-format.js';
import { acknowledgeCommand } from './acknowledge.js';
import { overrideCommand } from './override.js';

const ROLES = ['engineering', 'sre'] as const;
const SCHEDULES = ['window', 'now', 'at'] as const;
const FORMATS = ['json', 'md'] as const;
const ROLLBACK_MODES = ['down', 'restore'] as const;
type Format = (typeof FORMATS)[number];

interface RollbackRequest {
  id: string;
  runId: string;
  mode: string;
  status: string;
  requestedBy: string;
  reason: string;
  decidedBy: string | null;
  decisionComment: string | null;
  createdAt: string;
  scheduledFor?: string | null;
  plan?: RollbackPlan | null;
}

function runLine(run: Run): string {
  return `run ${run.id} status=${run.status}`;
}

function requestLine(r: RollbackRequest): string {
  return `rollback request ${r.id} mode=${r.mode} status=${r.status} requested by ${r.requestedBy}${r.decidedBy ? `, decided by ${r.decidedBy}` : ''}${r.scheduledFor ? `, starts ${r.scheduledFor}` : ''}`;
}

/** The body of a report or preflight in the chosen format: from the file name, else Markdown for people and JSON for --json. */
function reportFormat(explicit: Format | undefined, json: boolean, output: string | undefined): Format {
  if (json && explicit === 'md') throw new UsageError('--json prints JSON: drop --json or use --format json');
  if (explicit) return explicit;
  if (json) return 'json';
  if (output && /\.json$/i.test(output)) return 'json';
  return 'md';
}

async function writeOutput(s: Session, file: string, body: string): Promise<void> {
  try {
    await writeFile(file, body);
  } catch (err) {
    throw new LocalError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  s.io.err(`wrote ${file} (${Buffer.byteLength(body)} bytes)\n`);
}

/** GET a report-like resource and print or save it. */
function reportCommand(rt: Runtime, what: 'report' | 'preflight') {
  return action(rt, (id: string, opts: { format?: Format; output?: string }, cmd: Command) => {
    const format = reportFormat(opts.format, globalsOf(cmd).json, opts.output);
    return async (s) => {
      const res = await s.client.request('GET', `/v1/runs/${enc(id)}/${what}`, {
        query: { format },
        accept: format === 'md' ? 'text/markdown, application/problem+json' : undefined,
      });
      if (format === 'json' && res.json === undefined) {
        throw new ApiError(res.status, 'Unexpected answer', `the ${what} came as ${res.contentType || 'no content type'}, not JSON: is SFM_URL the migration service?`, [], undefined);
      }
      const body = format === 'md' ? res.text : `${JSON.stringify(res.json, null, 2)}\n`;
      if (opts.output) await writeOutput(s, opts.output, body);
      if (s.json) s.io.out(body);
      else if (!opts.output) s.io.out(body.endsWith('\n') ? body : `${body}\n`);
    };
  });
}

export function runsCommand(rt: Runtime, parent: Command): void {
  const runs = parent.command('runs').description('migration runs: create, approve, apply, follow, undo');
  overrideCommand(rt, runs);
  acknowledgeCommand(rt, runs);

  runs
    .command('create')
    .description('create a run for the pending migrations of an environment (preflight starts on its own)')
    .requiredOption('--environment <env>', 'target environment, e.g. staging')
    .requiredOption('--description <text>', 'what the run changes and why', textParser(500))
    .option('--ticket <id>', 'change ticket, e.g. OPS-42')
    .option('--to <migration>', 'only pending migrations up to and including this one')
    .addOption(new Option('--schedule <mode>', 'when to apply once approved: window (next fitting window), now, at (--at)').argParser(choiceParser(rt, SCHEDULES)))
    .option('--at <time>', 'with --schedule at: ISO 8601 start time, e.g. 2026-03-01T02:30:00Z', isoTimeParser(rt))
    .option('--idempotency-key <key>', 'retry-safe: the same key and body return the same run')
    .option('-q, --quiet', 'print only the run id (RUN_ID=$(sfm runs create ... -q))')
    .action(action(rt, (opts: {
      environment: string; description: string; ticket?: string; to?: string; schedule?: (typeof SCHEDULES)[number];
      at?: string; idempotencyKey?: string; quiet?: boolean;
    }, cmd: Command) => {
      if (opts.quiet && globalsOf(cmd).json) throw new UsageError('--quiet and --json exclude each other');
      const mode = opts.schedule ?? (opts.at ? 'at' : undefined);
      if (mode === 'at' && !opts.at) throw new UsageError('--schedule at needs --at <time>');
      if (opts.at && mode !== 'at') throw new UsageError('--at only goes with --schedule at');
      const key = opts.idempotencyKey;
      if (key !== undefined && !isPlaceholder(key) && !/^[\x21-\x7e]{1,200}$/.test(key)) {
        throw new UsageError('--idempotency-key must be 1 to 200 printable ASCII characters without spaces');
      }
      const body = {
        environment: opts.environment,
        description: opts.description,
        // An empty value (a workflow's unset input) means "not given".
        ...(opts.ticket && { ticket: opts.ticket }),
        ...(opts.to && { to: opts.to }),
        ...(mode !== undefined && { schedule: mode === 'at' ? { mode, at: opts.at } : { mode } }),
      };
      return async (s) => {
        const res = await s.client.request('POST', '/v1/runs', { body, headers: key ? { 'idempotency-key': key } : {} });
        const run = res.json as Run | undefined;
        if (!run?.id) throw new ApiError(res.status, 'Unexpected answer', `POST /v1/runs answered ${res.contentType || 'without a content type'} without a run: is SFM_URL the migration service?`, [], res.json);
        if (opts.quiet) return s.io.out(`${run.id}\n`);
        s.print(run, () => `${res.status === 201 ? 'Created' : 'Existing (same idempotency key)'} run ${run.id}\n` +
          indent(block([
            ['environment', run.environment],
            ['status', run.status],
            ['migrations', run.migrations.length ? `${run.migrations.length}: ${run.migrations.map((m) => m.name).join(', ')}` : 'none pending'],
            ['approvals', approvalsLine(run)],
          ])) +
          `Next: sfm runs wait ${run.id} --until preflight\n`);
      };
    }));

  runs
    .command('list')
    .description('list runs, newest first')
    .option('--environment <env>', 'only this environment')
    .addOption(new Option('--status <status>', `only runs in this status: ${RUN_STATUSES.join(', ')}`).argParser(choiceParser(rt, RUN_STATUSES)))
    .option('--limit <n>', 'at most n runs (1-200, default 20)', intParser(rt, 1, 200))
    .option('--cursor <cursor>', 'the next page, from a previous list')
    .action(action(rt, (opts: { environment?: string; status?: string; limit?: number; cursor?: string }) => async (s) => {
      const page = await s.client.get<{ items: Run[]; nextCursor: string | null }>('/v1/runs', {
        environment: opts.environment, status: opts.status, limit: opts.limit, cursor: opts.cursor,
      });
      s.print(page, () => (page.items.length ? runRows(page.items) : 'no runs\n') +
        (page.nextCursor ? `more: sfm runs list --cursor ${page.nextCursor}\n` : ''));
    }));

  runs
    .command('show')
    .description('one run: status, migrations, approvals, backup, error')
    .argument('<id>', 'run id')
    .action(action(rt, (id: string) => async (s) => {
      const run = await s.client.get<Run>(`/v1/runs/${enc(id)}`);
      s.print(run, () => showRun(run));
    }));

  const decide = (decision: 'approve' | 'reject') => action(rt, (id: string, opts: { role: (typeof ROLES)[number]; comment?: string }) => {
    const body = { role: opts.role, decision, ...(opts.comment !== undefined && { comment: opts.comment }) };
    return async (s) => {
      const run = await s.client.post<Run>(`/v1/runs/${enc(id)}/approvals`, body);
      s.print(run, () => `${decision === 'approve' ? 'Approved' : 'Rejected'} as ${opts.role}: ${runLine(run)}\n  approvals  ${approvalsLine(run)}\n`);
    };
  });

  runs
    .command('approve')
    .description('approve the digest the run carries, as engineering or sre')
    .argument('<id>', 'run id')
    .addOption(new Option('--role <role>', 'the role you approve as: engineering or sre').argParser(choiceParser(rt, ROLES)).makeOptionMandatory())
    .option('--comment <text>', 'a note kept with the approval')
    .action(decide('approve'));

  runs
    .command('reject')
    .description('reject the run, as engineering or sre')
    .argument('<id>', 'run id')
    .addOption(new Option('--role <role>', 'the role you reject as: engineering or sre').argParser(choiceParser(rt, ROLES)).makeOptionMandatory())
    .requiredOption('--comment <text>', 'why', textParser(2000))
    .action(decide('reject'));

  runs
    .command('apply')
    .description('confirm an approved run (operator): inside a window it applies now, outside it is scheduled for the next window (or --override-window asks an sre to co-sign)')
    .argument('<id>', 'run id')
    .requiredOption('--confirm <environment>', "the run's environment name, typed out")
    .option('--override-window', 'outside the windows: ask for a window override (needs --reason); an sre other than you approves it with sfm runs override')
    .option('--reason <text>', 'why (required with --override-window)', textParser(2000))
    .action(action(rt, (id: string, opts: { confirm: string; overrideWindow?: boolean; reason?: string }) => {
      if (opts.overrideWindow && opts.reason === undefined) throw new UsageError('--override-window needs --reason <text>');
      const body = { confirm: opts.confirm, ...(opts.overrideWindow && { overrideWindow: true }), ...(opts.reason !== undefined && { reason: opts.reason }) };
      return async (s) => {
        const run = await s.client.post<Run>(`/v1/runs/${enc(id)}/apply`, body);
        s.print(run, () => run.status === 'scheduled'
          ? `Confirmed, scheduled for ${run.scheduledFor ?? 'the next window'}: ${runLine(run)}\n`
          : run.status === 'approved'
            ? `Window override asked: ${runLine(run)}\nAn sre other than you approves it (the apply then starts): sfm runs override ${run.id} --approve\n`
            : `Apply started: ${runLine(run)}\nFollow it: sfm runs wait ${run.id}\n`);
      };
    }));

  runs
    .command('cancel')
    .description('cancel a run before it starts applying')
    .argument('<id>', 'run id')
    .option('--reason <text>', 'why', textParser(2000))
    .action(action(rt, (id: string, opts: { reason?: string }) => async (s) => {
      const run = await s.client.post<Run>(`/v1/runs/${enc(id)}/cancel`, opts.reason === undefined ? {} : { reason: opts.reason });
      s.print(run, () => `Cancelled: ${runLine(run)}\n`);
    }));

  runs
    .command('rollback')
    .description('undo a run: ask (operator, --mode), decide (sre, --approve/--reject), or list requests (--status)')
    .argument('<id>', 'run id')
    .addOption(new Option('--mode <mode>', 'ask for a rollback: down (down migrations) or restore (the backup)').argParser(choiceParser(rt, ROLLBACK_MODES)))
    .option('--confirm <environment>', "with --mode: the run's environment name, typed out")
    .option('--reason <text>', 'with --mode: why', textParser(2000))
    .option('--override-window', 'with --mode: outside the windows, start as soon as an sre approves instead of at the next window')
    .option('--plan', 'with --mode: show what it would do (the plan an approver approves by digest)')
    .option('--approve', 'sre: approve the open request\'s plan (needs --plan-digest); starts it, or holds it for the next window')
    .option('--plan-digest <sha256>', 'with --approve: the digest of the plan you approve (sfm runs rollback ID --plan --mode M)')
    .option('--reject', 'sre: reject the open request (needs --comment)')
    .option('--comment <text>', 'with --approve/--reject: a note kept with the decision')
    .option('--status', 'list the rollback and restore requests of the run')
    .action(action(rt, (id: string, opts: {
      mode?: (typeof ROLLBACK_MODES)[number]; confirm?: string; reason?: string; approve?: boolean; reject?: boolean; comment?: string; status?: boolean;
      overrideWindow?: boolean; plan?: boolean; planDigest?: string;
    }) => {
      if (opts.plan) {
        if (!opts.mode) throw new UsageError('--plan needs --mode down|restore');
        if (opts.confirm !== undefined || opts.reason !== undefined || opts.approve || opts.reject || opts.status) throw new UsageError('--plan only shows the plan: drop --confirm, --reason, --approve, --reject and --status');
        return async (s) => {
          const plan = await s.client.get<RollbackPlan>(`/v1/runs/${enc(id)}/rollback/plan`, { mode: opts.mode! });
          s.print(plan, () => planText(plan));
        };
      }
      if (opts.planDigest !== undefined && !opts.approve) throw new UsageError('--plan-digest goes with --approve');
      if (opts.overrideWindow && !opts.mode) throw new UsageError('--override-window goes with --mode');
      const chosen = [opts.mode && '--mode', opts.approve && '--approve', opts.reject && '--reject', opts.status && '--status'].filter(Boolean);
      if (chosen.length !== 1) {
        throw new UsageError(chosen.length
          ? `${chosen.join(' and ')} exclude each other`
          : 'say what to do: --mode down|restore (ask), --approve or --reject (decide), or --status (list)');
      }
      if (opts.mode) {
        if (opts.confirm === undefined || opts.reason === undefined) throw new UsageError('--mode needs --confirm <environment> and --reason <text>');
        if (opts.comment !== undefined) throw new UsageError('--comment goes with --approve/--reject; use --reason with --mode');
        const body = { mode: opts.mode, confirm: opts.confirm, reason: opts.reason, ...(opts.overrideWindow && { overrideWindow: true }) };
        return async (s) => {
          const req = await s.client.post<RollbackRequest>(`/v1/runs/${enc(id)}/rollback`, body);
          s.print(req, () => `${requestLine(req)}\n${req.plan ? planText(req.plan) : ''}An sre other than you decides: sfm runs rollback ${id} --approve --plan-digest ${req.plan?.digest ?? '<digest>'}\n`);
        };
      }
      if (opts.confirm !== undefined || opts.reason !== undefined) throw new UsageError('--confirm and --reason go with --mode');
      if (opts.status) {
        if (opts.comment !== undefined) throw new UsageError('--comment goes with --approve/--reject');
        return async (s) => {
          const list = await s.client.get<RollbackRequest[]>(`/v1/runs/${enc(id)}/rollback`);
          s.print(list, () => list.length
            ? table(['ID', 'MODE', 'STATUS', 'REQUESTED', 'BY', 'DECIDED BY', 'REASON'],
              list.map((r) => [r.id, r.mode, r.status, time(r.createdAt), r.requestedBy, r.decidedBy ?? '-', truncate(r.reason, 50)]))
            : `run ${id} has no rollback requests\n`);
        };
      }
      if (opts.reject && !opts.comment?.trim()) throw new UsageError('--reject needs --comment <text>');
      if (opts.approve && !opts.planDigest) throw new UsageError(`--approve needs --plan-digest <sha256>: look at the plan first (sfm runs rollback ${id} --plan --mode down|restore)`);
      const body = { decision: opts.approve ? 'approve' : 'reject', ...(opts.comment !== undefined && { comment: opts.comment }), ...(opts.planDigest !== undefined && { planDigest: opts.planDigest }) };
      return async (s) => {
        const req = await s.client.post<RollbackRequest>(`/v1/runs/${enc(id)}/rollback/approvals`, body);
        s.print(req, () => `${requestLine(req)}\n${req.status === 'running' ? `Follow it: sfm runs wait ${id}\n` : ''}`);
      };
    }));

  runs
    .command('report')
    .description('the apply report (backup, workers, migrations, verification) and any rollback report')
    .argument('<id>', 'run id')
    .addOption(new Option('--format <format>', 'json or md (default: md, or json with --json or a .json --output)').argParser(choiceParser(rt, FORMATS)))
    .option('--output <file>', 'write the report to this file')
    .action(reportCommand(rt, 'report'));

  runs
    .command('preflight')
    .description('the latest preflight report (rehearsal, lint, checks, impact)')
    .argument('<id>', 'run id')
    .addOption(new Option('--format <format>', 'json or md (default: md, or json with --json or a .json --output)').argParser(choiceParser(rt, FORMATS)))
    .option('--output <file>', 'write the report to this file')
    .action(reportCommand(rt, 'preflight'));

  runs
    .command('events')
    .description('the audit events of the run, oldest first')
    .argument('<id>', 'run id')
    .action(action(rt, (id: string) => async (s) => {
      const events = await s.client.get<AuditEvent[]>(`/v1/runs/${enc(id)}/events`);
      s.print(events, () => (events.length ? eventRows(events) : 'no events\n'));
    }));

  runs
    .command('logs')
    .description('the apply log of the run')
    .argument('<id>', 'run id')
    .action(action(rt, (id: string) => async (s) => {
      const res = await s.client.request('GET', `/v1/runs/${enc(id)}/logs`, { accept: 'text/plain, application/problem+json' });
      s.print({ runId: id, log: res.text }, () => (res.text === '' || res.text.endsWith('\n') ? res.text : `${res.text}\n`));
    }));

  runs
    .command('wait')
    .description('wait until the run reaches a point; progress (status, phase) goes to stderr')
    .argument('<id>', 'run id')
    .addOption(new Option('--until <point>', 'preflight (awaiting approval), approved, applied (verified, monitoring), done (succeeded), or run statuses separated by commas (e.g. restored, or succeeded,degraded)')
      .argParser(waitTargetParser(rt)).default('done'))
    .addOption(new Option('--timeout <duration>', 'give up after this long, exit 4 (e.g. 90s, 30m, 2h)')
      .argParser(durationParser(rt, 1000, 7 * 24 * 3_600_000)).default(30 * 60_000, '30m'))
    .addOption(new Option('--interval <duration>', 'poll every (e.g. 500ms, 2s)').argParser(durationParser(rt, 100, 3_600_000)).default(2000, '2s'))
    .addHelpText('after', '\nExit codes: 0 reached, 1 the run ended badly first, 3 API error, 4 timed out.\nWith --json the last run seen is printed on stdout in every case.')
    .action(action(rt, (id: string, opts: { until: WaitTarget; timeout: number; interval: number }) => async (s) => {
      const result = await waitForRun(s.client, id, { target: opts.until, timeoutMs: opts.timeout, intervalMs: opts.interval }, (line) => s.io.err(`${line}\n`));
      const run = result.run;
      if (s.json) s.io.out(`${JSON.stringify(run, null, 2)}\n`);
      if (result.outcome === 'timeout') {
        throw new WaitTimeoutError(`timed out after ${formatDuration(opts.timeout)} waiting for run ${run.id} to reach ${describeTarget(opts.until)} (status=${run.status})`);
      }
      if (result.outcome === 'bad') {
        const why = run.error?.message ? `: ${run.error.message.replace(/\s+/g, ' ').trim()}` : '';
        throw new RunEndedError(`run ${run.id} ended ${run.status}${opts.until === 'done' ? '' : ` before reaching ${describeTarget(opts.until)}`}${why}`);
      }
      if (!s.json) s.io.out(`run ${run.id} ${judge(opts.until, run.status) === 'ok' ? 'reached' : 'is at'} ${describeTarget(opts.until)}: status=${run.status}\n`);
    }));
}
