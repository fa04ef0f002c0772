import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { validateCommandLine } from '../../src/cli/program.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { parseMigrationConfig } from '../../services/environments/model.js';

// .github/workflows/db-bootstrap.yml: valid YAML, the runbook's shape, and every
// `sfm` call in it a real command with real options of the CLI we ship.

interface Step { id?: string; name?: string; uses?: string; run?: string; if?: string; env?: Record<string, string>; with?: Record<string, unknown> }
interface Job { if?: string; environment?: string; steps: Step[]; services?: Record<string, { image: string }>; env?: Record<string, string>; 'timeout-minutes'?: number }
interface Workflow { name: string; on: Record<string, any>; jobs: Record<string, Job> }

const run = promisify(execFile);
const load = async () => parse(await readFile(join(PROJECT_ROOT, '.github/workflows/db-bootstrap.yml'), 'utf8'), { strict: true, uniqueKeys: true }) as Workflow;

const OPERATORS = new Set([')', '|', '||', '&&', ';', '>', '>>', '2>', '&']);

/** Shell words of one line: quotes removed, `${{ expr }}` as one word, operators and `$(` as their own tokens. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\$\(|\)|\|\||&&|\||;|2?>>?|&)|([^\s"'()|;&>]+)/g;
  for (const m of line.replace(/\$\{\{[^}]*\}\}/g, 'EXPR').matchAll(re)) out.push(m[1] ?? m[2] ?? m[3] ?? m[4]!);
  return out;
}

/** Every `sfm ...` call in a run script (also inside `$(...)`), up to the next shell operator. */
function sfmCalls(script: string): string[][] {
  const calls: string[][] = [];
  for (const line of script.split('\n')) {
    const w = words(line);
    w.forEach((word, i) => {
      if (word !== 'sfm') return;
      const end = w.findIndex((x, j) => j > i && OPERATORS.has(x));
      calls.push(w.slice(i + 1, end === -1 ? undefined : end));
    });
  }
  return calls;
}

describe('the db-bootstrap workflow', () => {
  test('is valid YAML with a protected, confirmed workflow_dispatch and a pull-request preflight job', async () => {
    const wf = await load();
    assert.equal(wf.name, 'db-bootstrap');
    const inputs = wf.on.workflow_dispatch.inputs;
    assert.deepEqual(inputs.environment.options, ['staging', 'production']);
    assert.equal(inputs.environment.required, true);
    assert.equal(inputs.apply.required, false, 'preflight-only runs need no confirmation');
    assert.ok(wf.on.pull_request.paths.includes('database/migrations/**'));

    const bootstrap = wf.jobs.bootstrap!;
    assert.equal(bootstrap.if, "github.event_name == 'workflow_dispatch'");
    assert.equal(bootstrap.environment, '${{ inputs.environment }}', 'a GitHub environment guards the secrets');
    assert.equal(bootstrap.env?.SFM_URL, '${{ secrets.SFM_URL }}');
    assert.equal(bootstrap.env?.SFM_TOKEN, '${{ secrets.SFM_TOKEN }}');
    const uploads = bootstrap.steps.filter((s) => s.uses?.startsWith('actions/upload-artifact@'));
    assert.deepEqual(uploads.map((s) => String(s.with?.name).split('-$')[0]), ['preflight-report', 'verification-report']);
    // The apply is only awaited with the exact confirmation; without it the run is cancelled.
    const applyGated = bootstrap.steps.filter((s) => s.if?.includes("steps.gate.outputs.apply == 'true'"));
    assert.ok(applyGated.some((s) => s.run?.includes('--until approved')));
    assert.ok(applyGated.some((s) => s.run?.includes('--until done')), 'the verification report is saved after the watch, not at monitoring');
    // In apply mode confirm the typed confirmation becomes the operator's confirmation, after approval and before the wait for the apply.
    const confirmAt = applyGated.findIndex((s) => /sfm runs apply "\$RUN_ID" --confirm "\$ENVIRONMENT"/.test(s.run ?? ''));
    assert.ok(confirmAt > applyGated.findIndex((s) => s.run?.includes('--until approved')), 'confirmed after approval');
    assert.ok(confirmAt < applyGated.findIndex((s) => s.run?.includes('--until done')), 'confirmed before waiting for the apply');
    assert.ok(bootstrap.steps.some((s) => s.if?.includes("steps.gate.outputs.apply != 'true'") && s.run?.includes('sfm runs cancel')));
    // A preflight that fails or times out, or a cancelled job, does not leave the run holding the environment.
    assert.ok(bootstrap.steps.some((s) => s.if?.includes('failure() || cancelled()') && s.run?.includes('sfm runs cancel')));
    assert.ok(Number(bootstrap['timeout-minutes']) <= 360, 'GitHub-hosted jobs stop at 6 hours');
    assert.ok(!JSON.stringify(bootstrap).includes('run_attempt'), 'a re-run replays the same run instead of a 409');

    const pr = wf.jobs['migrate-preflight']!;
    assert.equal(pr.if, "github.event_name == 'pull_request'");
    assert.equal(pr.services?.postgres?.image, 'postgres:15');
    assert.ok(pr.steps.some((s) => s.run?.includes('--until preflight')));
    assert.ok(pr.steps.some((s) => s.uses?.startsWith('actions/upload-artifact@')));
  });

  test('every sfm call in it parses with the real CLI', async () => {
    const wf = await load();
    const calls = Object.values(wf.jobs).flatMap((job) => job.steps.flatMap((s) => (s.run ? sfmCalls(s.run) : [])));
    assert.ok(calls.length >= 15, `found ${calls.length} sfm calls`);
    const commands = new Set(calls.map((c) => c.slice(0, 2).join(' ')));
    for (const expected of ['runs create', 'runs wait', 'runs preflight', 'runs report', 'runs cancel', 'runs logs', 'runs events', 'environments']) {
      assert.ok([...commands].some((c) => c.startsWith(expected)), `the workflow uses sfm ${expected}`);
    }
    for (const call of calls) {
      const verdict = validateCommandLine(call);
      assert.deepEqual(verdict, { ok: true }, `sfm ${call.join(' ')}`);
    }
  });

  test('the pull-request job lints the migrations with sfm lint and uploads the SARIF to code scanning', async () => {
    const pr = (await load()).jobs['migrate-preflight']!;
    const lint = pr.steps.find((s) => s.id === 'lint');
    const call = sfmCalls(lint?.run ?? '')[0];
    assert.deepEqual(call?.slice(0, 2), ['lint', 'database/migrations']);
    assert.ok(call.includes('--format') && call[call.indexOf('--format') + 1] === 'sarif');
    const upload = pr.steps.find((s) => s.uses?.startsWith('github/codeql-action/upload-sarif@'));
    assert.equal(upload?.with?.sarif_file, 'sfm-lint.sarif');
    assert.equal((pr as { permissions?: Record<string, string> }).permissions?.['security-events'], 'write');
    // Findings still fail the job, after the upload.
    assert.ok(pr.steps.findIndex((s) => s.if?.includes("steps.lint.outputs.exit != '0'")) > pr.steps.indexOf(upload!));
  });

  test('the apply confirmation must repeat the environment name exactly', async () => {
    const gate = (await load()).jobs.bootstrap!.steps.find((s) => s.name?.startsWith('Apply confirmation'))!;
    const dir = await mkdtemp(join(tmpdir(), 'sf-gate-'));
    try {
      const decide = async (environment: string, confirm: string) => {
        const out = join(dir, `out-${Math.random()}`);
        await writeFile(out, '');
        await run('bash', ['-c', gate.run!], { env: { PATH: process.env.PATH ?? '', ENVIRONMENT: environment, CONFIRM: confirm, GITHUB_OUTPUT: out } });
        return (await readFile(out, 'utf8')).trim();
      };
      assert.equal(await decide('production', 'production'), 'apply=true');
      assert.equal(await decide('production', 'Production'), 'apply=false');
      assert.equal(await decide('production', 'staging'), 'apply=false');
      assert.equal(await decide('production', ''), 'apply=false');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the checker itself refuses what the CLI does not have', () => {
    assert.deepEqual(sfmCalls('X=$(npx sfm runs wait "$RUN_ID" --until preflight --timeout 60m) > out.txt'), [['runs', 'wait', '$RUN_ID', '--until', 'preflight', '--timeout', '60m']]);
    assert.equal(validateCommandLine(['runs', 'wait', 'X', '--untill', 'done']).ok, false);
    assert.equal(validateCommandLine(['runs', 'deploy', 'X']).ok, false);
    assert.equal(validateCommandLine(['runs', 'create', '--description', 'no environment']).ok, false);
  });

  test("the PR job's migration config is a valid config with a ci environment", async () => {
    const mod = (await import(join(PROJECT_ROOT, '.github/preflight/migration-config.js'))) as { default: unknown };
    const environments = parseMigrationConfig(mod.default, PROJECT_ROOT);
    assert.deepEqual(Object.keys(environments), ['ci']);
    assert.equal(environments.ci!.databaseUrlEnv, 'CI_DATABASE_URL');
    const wf = await load();
    assert.equal(wf.jobs['migrate-preflight']!.env?.MIGRATION_CONFIG, '.github/preflight/migration-config.js');
    assert.ok(wf.jobs['migrate-preflight']!.env?.CI_DATABASE_URL?.startsWith('postgres://'));
  });
});
