// The ops assets stay true to what the service exports: every metric the
// Grafana dashboard and the alert rules query is in a real scrape, the alerts
// file parses with the expected alerts, each documented in ops/README.md; and
// promtool, when installed, accepts both the rules and the scrape.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { windowOpenNow } from '../../services/metrics/state.js';
import { DEFAULT_RUNBOOK_BASE } from '../../src/ops/alert-rules.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { promtool, promtoolSkip } from '../support/promtool.js';
import { scrape, type Scrape } from './scrape.js';

const DASHBOARD = join(PROJECT_ROOT, 'ops/grafana/starforge-migrations.json');
const ALERTS = join(PROJECT_ROOT, 'ops/prometheus/alerts.yml');
const OPS_README = join(PROJECT_ROOT, 'ops/README.md');
const EXPECTED_ALERTS = [
  'StarforgeEtlFailureRateHigh', 'StarforgeEtlBacklogGrowing', 'StarforgeEtlOldestSnapshotTooOld', 'StarforgeEtlPausedTooLong',
  'StarforgeRunFailed', 'StarforgeRunVerificationFailed', 'StarforgeRunDegraded', 'StarforgeRunStuckApplying',
  'StarforgeWindowMissed', 'StarforgeBackupFailed', 'StarforgeTargetDown', 'StarforgeControlDatabaseDown',
  'StarforgeNotificationsFailing', 'StarforgeServiceDown', 'StarforgeServiceNotScraped',
];

let t: TestApp;
let exported: Scrape;
before(async () => {
  t = await startTestApp({ label: 'metrics_assets' });
  await t.http().get('/v1/runs').set('authorization', bearer('vic'));
  exported = await scrape(t);
});
after(async () => t?.close());

/** Metric names a PromQL expression uses (histogram series back to their family). */
function metricNames(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\bstarforge_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')))];
}

function assertExported(names: string[], where: string): void {
  for (const name of names) {
    const family = exported.types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(exported.types.has(family), `${where} uses ${name}, which /metrics does not export`);
  }
}

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
  panels?: Panel[];
}

test('the dashboard parses and queries only metrics the service exports, covering runs, windows, backups and ETL', async () => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { title: string; uid: string; panels: Panel[]; templating: { list: Array<{ query?: unknown; definition?: string }> } };
  assert.equal(dashboard.uid, 'starforge-migrations');
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((target) => target.expr));
  assert.ok(exprs.length >= 20, `${exprs.length} queries`);
  for (const p of panels.filter((p) => p.type !== 'row')) assert.ok(p.targets && p.targets.length > 0, `panel "${p.title}" has queries`);
  const used = new Set<string>();
  for (const expr of exprs) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `a query without a StarForge metric: ${expr}`);
    assertExported(names, `dashboard query ${expr}`);
    for (const n of names) used.add(n);
  }
  for (const v of dashboard.templating.list) if (v.definition) assertExported(metricNames(v.definition), 'a dashboard variable');
  for (const name of [
    'starforge_runs', 'starforge_run_transitions_total', 'starforge_run_phase_duration_seconds', 'starforge_pending_migrations',
    'starforge_maintenance_window_open', 'starforge_backup_failures_total', 'starforge_backup_last_size_bytes',
    'starforge_etl_snapshots_processed_total', 'starforge_etl_snapshots_failed_total', 'starforge_etl_backlog_snapshots',
    'starforge_etl_oldest_unprocessed_age_seconds', 'starforge_etl_errors_last_hour', 'starforge_verification_check_failures_total',
  ]) assert.ok(used.has(name), `the dashboard shows ${name}`);
});

test('the alert rules parse, are the expected alerts, query exported metrics and are documented in ops/README.md', async () => {
  const doc = parseYaml(await readFile(ALERTS, 'utf8')) as { groups: Array<{ name: string; rules: Array<Record<string, unknown>> }> };
  const rules = doc.groups.flatMap((g) => g.rules);
  assert.deepEqual(rules.map((r) => r.alert).sort(), [...EXPECTED_ALERTS].sort());
  const readme = await readFile(OPS_README, 'utf8');
  for (const rule of rules) {
    const name = rule.alert as string;
    assert.equal(typeof rule.expr, 'string', name);
    // up is Prometheus's own series about the scrape, not the service's.
    if (!/^(absent\()?up\{/.test(rule.expr as string)) assertExported(metricNames(rule.expr as string), `alert ${name}`);
    assert.ok(['critical', 'warning'].includes((rule.labels as { severity?: string }).severity ?? ''), `${name} has a severity`);
    const annotations = rule.annotations as Record<string, string>;
    assert.ok(annotations.summary && annotations.description, `${name} says what is wrong`);
    assert.equal(annotations.runbook_url, `${DEFAULT_RUNBOOK_BASE}#${name.toLowerCase()}`, 'absolute, anchored at its section');
    assert.ok(readme.includes(`### ${name}\n`), `ops/README.md documents ${name}`);
  }
  for (const section of ['#rollback--emergency-restore-decision-flow', '#common-failure-modes--mitigations', '#post-apply-verification-smoke--health-checks']) {
    assert.ok(readme.includes(section), `ops/README.md links the runbook's ${section}`);
  }
});

test('promtool accepts the alert rules and a live scrape', { skip: promtoolSkip() }, () => {
  const rules = promtool(['check', 'rules', ALERTS]);
  assert.equal(rules.status, 0, rules.output);
  const metrics = promtool(['check', 'metrics'], exported.text);
  assert.equal(metrics.status, 0, `promtool check metrics: ${metrics.output}`);
  assert.equal(metrics.output.trim(), '', 'no lint findings');
});

test('the default process and Node.js metrics are exported', () => {
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
    assert.ok(exported.types.has(name), `${name} is exported`);
  }
});

test('every exported metric follows the conventions: starforge_ prefix, counters end in _total, units in the name', () => {
  for (const [name, type] of exported.types) {
    // prom-client's default metrics keep their own well-known names.
    if (/^(process|nodejs)_/.test(name)) continue;
    assert.match(name, /^starforge_[a-z0-9_]+$/);
    if (type === 'counter') assert.match(name, /_total$/, name);
    else assert.doesNotMatch(name, /_total$/, name);
    if (type === 'histogram') assert.match(name, /_seconds$|_bytes$/, name);
  }
});

test('the maintenance window gauge: 1 with no windows, else the scheduler\'s window math', () => {
  const staging = t.config.environments.staging!;
  const production = t.config.environments.production!;
  assert.equal(staging.windows.length, 0);
  assert.equal(exported.value('starforge_maintenance_window_open', { environment: 'staging' }), 1);
  assert.ok(production.windows.length > 0);
  const open = exported.value('starforge_maintenance_window_open', { environment: 'production' });
  assert.ok(open === 0 || open === 1, `production has a sample (${open})`);
  // 0 2 * * 2-4 Europe/Berlin for 120 minutes: open on a Tuesday at 02:30 Berlin time, closed at 06:00.
  const tuesday = (time: string) => new Date(`2026-11-24T${time}+01:00`);
  const windowed = { ...production, windows: [{ cron: '0 2 * * 2-4', durationMinutes: 120, timezone: 'Europe/Berlin' }] };
  assert.equal(windowOpenNow(windowed, tuesday('02:30:00')), true);
  assert.equal(windowOpenNow(windowed, tuesday('06:00:00')), false);
  assert.equal(windowOpenNow({ ...production, windows: [] }, tuesday('06:00:00')), true);
});
