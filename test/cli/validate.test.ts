// validateCommandLine checks a command line against the real definitions
// without running it; plus the pure parts of `runs wait`.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateCommandLine } from '../../src/cli/program.js';
import { parseDuration } from '../../src/cli/values.js';
import { judge, progressLine } from '../../src/cli/wait.js';

const ID = '4f1c2a9e-0000-4000-8000-000000000001';

describe('validateCommandLine', () => {
  test('accepts every command with its options', () => {
    const good = [
      ['runs', 'create', '--environment', 'production', '--description', 'add power', '--ticket', 'OPS-1', '--to', '1700000000100_x', '--schedule', 'window', '--idempotency-key', 'ci-42', '-q'],
      ['runs', 'create', '--environment', 'staging', '--description', 'd', '--schedule', 'at', '--at', '2026-03-01T02:30:00Z'],
      ['runs', 'create', '--environment', 'staging', '--description', 'd', '--schedule', 'now', '--quiet'],
      ['runs', 'list', '--environment', 'staging', '--status', 'awaiting_approval', '--limit', '50'],
      ['runs', 'show', ID],
      ['runs', 'approve', ID, '--role', 'engineering', '--comment', 'ok'],
      ['runs', 'reject', ID, '--role', 'sre', '--comment', 'no'],
      ['runs', 'apply', ID, '--confirm', 'production'],
      ['runs', 'apply', ID, '--confirm', 'production', '--override-window', '--reason', 'incident'],
      ['runs', 'cancel', ID], ['runs', 'cancel', ID, '--reason', 'superseded'],
      ['runs', 'rollback', ID, '--mode', 'down', '--confirm', 'production', '--reason', 'bad'],
      ['runs', 'rollback', ID, '--mode', 'restore', '--confirm', 'production', '--reason', 'bad'],
      ['runs', 'rollback', ID, '--mode', 'down', '--confirm', 'production', '--reason', 'bad', '--override-window'],
      ['runs', 'rollback', ID, '--plan', '--mode', 'restore'], ['--json', 'runs', 'rollback', ID, '--plan', '--mode', 'down'],
      ['runs', 'rollback', ID, '--approve', '--plan-digest', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'], ['runs', 'rollback', ID, '--approve', '--comment', 'go', '--plan-digest', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
      ['runs', 'override', ID, '--approve'], ['runs', 'override', ID, '--reject', '--comment', 'no'], ['runs', 'override', ID, '--status'],
      ['runs', 'rollback', ID, '--reject', '--comment', 'no'], ['runs', 'rollback', ID, '--status'],
      ['runs', 'report', ID], ['runs', 'report', ID, '--format', 'md', '--output', 'report.md'], ['--json', 'runs', 'report', ID],
      ['runs', 'preflight', ID, '--format', 'json', '--output', 'preflight.json'],
      ['runs', 'events', ID], ['runs', 'logs', ID],
      ['runs', 'wait', 'RUN', '--until', 'preflight', '--timeout', '30m'],
      ['runs', 'wait', ID, '--until', 'approved', '--interval', '500ms'], ['runs', 'wait', ID, '--until', 'applied'], ['runs', 'wait', ID, '--until', 'done', '--timeout', '2h'],
      ['environments'], ['--json', 'environments'], ['windows', 'production'], ['windows', 'production', '--count', '10'],
      ['etl', 'health'], ['etl', 'health', '--environment', 'staging'],
      ['etl', 'pause', '--environment', 'staging', '--reason', 'r'], ['etl', 'resume', '--environment', 'staging', '--reason', 'r'],
      ['backfills', 'start', '--environment', 'staging', '--name', 'troops', '--batch-size', '500', '--max-rows-per-second', '2000', '--window-only'],
      ['backfills', 'list'], ['backfills', 'list', '--environment', 'staging'], ['backfills', 'show', 'B'],
      ['backfills', 'pause', 'B'], ['backfills', 'resume', 'B'], ['backfills', 'cancel', 'B'],
      ['--url', 'https://sfm.example.com', 'runs', 'list'], ['runs', 'show', ID, '--json'],
      ['--help'], ['runs', 'wait', '--help'], ['--version'], ['help', 'runs'],
      // Placeholders a workflow file holds where a value is only known at run time.
      ['runs', 'wait', '$RUN_ID', '--until', '${{ inputs.until }}', '--timeout', '${{ inputs.timeout }}'],
      ['runs', 'list', '--limit', '$LIMIT'],
    ];
    for (const args of good) assert.deepEqual(validateCommandLine(args), { ok: true }, args.join(' '));
  });

  test('rejects unknown commands and options, missing options and arguments, bad values and combinations', () => {
    const bad: Array<[string[], RegExp]> = [
      [[], /subcommand is required/],
      [['deploy'], /unknown command 'deploy'/],
      [['runs'], /subcommand is required/],
      [['runs', 'destroy', ID], /unknown command 'destroy'/],
      [['runs', 'list', '--verbose'], /unknown option '--verbose'/],
      [['runs', 'create', '--description', 'd'], /required option '--environment <env>'/],
      [['runs', 'create', '--environment', 'staging'], /required option '--description <text>'/],
      [['runs', 'create', '--environment', 'staging', '--description', 'd', '--schedule', 'later'], /Allowed choices are window, now, at/],
      [['runs', 'create', '--environment', 'staging', '--description', 'd', '--schedule', 'at'], /--schedule at needs --at/],
      [['runs', 'create', '--environment', 'staging', '--description', 'd', '--at', 'tomorrow'], /ISO 8601/],
      [['runs', 'create', '--environment', 'staging', '--description', 'd', '--token', 'x'], /unknown option '--token'/],
      [['runs', 'show'], /missing required argument 'id'/],
      [['runs', 'show', ID, ID], /too many arguments/],
      [['runs', 'list', '--limit', '0'], /whole number from 1 to 200/],
      [['runs', 'list', '--status', 'done'], /Allowed choices/],
      [['runs', 'approve', ID], /required option '--role <role>'/],
      [['runs', 'approve', ID, '--role', 'operator'], /Allowed choices are engineering, sre/],
      [['runs', 'reject', ID, '--role', 'sre'], /required option '--comment <text>'/],
      [['runs', 'apply', ID], /required option '--confirm <environment>'/],
      [['runs', 'apply', ID, '--confirm', 'production', '--override-window'], /--override-window needs --reason/],
      [['runs', 'rollback', ID], /say what to do/],
      [['runs', 'rollback', ID, '--mode', 'down', '--confirm', 'production'], /--mode needs --confirm <environment> and --reason/],
      [['runs', 'rollback', ID, '--mode', 'sideways', '--confirm', 'p', '--reason', 'r'], /Allowed choices are down, restore/],
      [['runs', 'rollback', ID, '--approve', '--reject', '--comment', 'x'], /exclude each other/],
      [['runs', 'rollback', ID, '--reject'], /--reject needs --comment/],
      [['runs', 'rollback', ID, '--approve'], /--approve needs --plan-digest/],
      [['runs', 'rollback', ID, '--plan'], /--plan needs --mode/],
      [['runs', 'rollback', ID, '--plan', '--mode', 'down', '--confirm', 'production'], /--plan only shows the plan/],
      [['runs', 'rollback', ID, '--reject', '--comment', 'x', '--plan-digest', 'abc'], /--plan-digest goes with --approve/],
      [['runs', 'rollback', ID, '--status', '--override-window'], /--override-window goes with --mode/],
      [['runs', 'override', ID], /say what to do/],
      [['runs', 'override', ID, '--reject'], /--reject needs --comment/],
      [['--json', 'runs', 'report', ID, '--format', 'md'], /--json prints JSON/],
      [['runs', 'report', ID, '--format', 'html'], /Allowed choices are json, md/],
      [['runs', 'wait', ID, '--until', 'finished'], /Unknown status finished. Expected preflight, approved, applied, done, or run statuses/],
      [['runs', 'wait', ID, '--timeout', 'soon'], /duration/],
      [['windows'], /missing required argument 'environment'/],
      [['windows', 'production', '--count', '1000'], /whole number from 1 to 100/],
      [['etl', 'pause', '--environment', 'staging'], /required option '--reason <text>'/],
      [['etl', 'resume', '--reason', 'r'], /required option '--environment <env>'/],
      [['backfills', 'start', '--environment', 'staging'], /required option '--name <name>'/],
      [['backfills', 'start', '--environment', 'staging', '--name', 'n', '--batch-size', 'many'], /whole number/],
      [['backfills', 'pause'], /missing required argument 'id'/],
    ];
    for (const [args, message] of bad) {
      const result = validateCommandLine(args);
      assert.equal(result.ok, false, `${args.join(' ')} should be refused`);
      if (!result.ok) assert.match(result.error, message, args.join(' '));
    }
  });

  test('never reads the environment nor talks to a service', () => {
    const saved = process.env.SFM_URL;
    delete process.env.SFM_URL;
    try {
      assert.deepEqual(validateCommandLine(['runs', 'show', ID]), { ok: true });
    } finally {
      if (saved !== undefined) process.env.SFM_URL = saved;
    }
  });
});

describe('runs wait semantics', () => {
  test('each target: when to keep waiting, when it is reached, when the run can no longer get there', () => {
    const cases: Array<[Parameters<typeof judge>[0], Record<string, ReturnType<typeof judge>>]> = [
      ['preflight', { created: 'wait', preflight_running: 'wait', awaiting_approval: 'ok', scheduled: 'ok', succeeded: 'ok', preflight_failed: 'bad', cancelled: 'bad' }],
      ['approved', { awaiting_approval: 'wait', approved: 'ok', scheduled: 'ok', applying: 'ok', rejected: 'bad', cancelled: 'bad' }],
      ['applied', { scheduled: 'wait', applying: 'wait', verifying: 'wait', monitoring: 'ok', succeeded: 'ok', failed: 'bad', verification_failed: 'bad', rolling_back: 'bad' }],
      ['done', { awaiting_approval: 'wait', monitoring: 'wait', rolling_back: 'wait', succeeded: 'ok', failed: 'bad', degraded: 'bad', rolled_back: 'bad', restored: 'bad', interrupted: 'bad' }],
    ];
    for (const [target, expected] of cases) {
      for (const [status, verdict] of Object.entries(expected)) assert.equal(judge(target, status), verdict, `${target} / ${status}`);
    }
  });

  test('progress lines name the status, the newest event and its migration', () => {
    const event = (type: string, details: Record<string, unknown> = {}) => ({ id: 1, runId: null, environment: 'staging', type, actor: 'x', from: null, to: null, details, at: '' });
    assert.equal(progressLine({ status: 'applying' }, event('migration.applied', { name: '1700000000001_add-x' })), 'status=applying phase=migration.applied 1700000000001_add-x');
    assert.equal(progressLine({ status: 'verifying' }, event('run.verifying')), 'status=verifying phase=run.verifying');
    assert.equal(progressLine({ status: 'created' }, undefined), 'status=created');
  });

  test('durations', () => {
    assert.equal(parseDuration('30m'), 1_800_000);
    assert.equal(parseDuration('2s'), 2000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('45'), 45_000);
    assert.equal(parseDuration('soon'), null);
  });
});
