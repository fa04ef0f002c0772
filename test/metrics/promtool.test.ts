// The alert rules, unit-tested with promtool (ops/prometheus/alerts.test.yml):
// the first failure of an environment fires, a counter that starts at 0 on a
// restarted replica fires on its first event, and the service being down or
// not scraped at all fires. The rules rendered for another deployment (runbook
// base, job name) stay valid and keep every URL absolute.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_RUNBOOK_BASE, RenderError, renderAlertRules, runbookUrls } from '../../src/ops/alert-rules.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { promtool, promtoolSkip } from '../support/promtool.js';

const RULES = join(PROJECT_ROOT, 'ops/prometheus/alerts.yml');
const RULE_TESTS = join(PROJECT_ROOT, 'ops/prometheus/alerts.test.yml');

test('promtool test rules: the alert unit tests pass', { skip: promtoolSkip() }, () => {
  const run = promtool(['test', 'rules', RULE_TESTS]);
  assert.equal(run.status, 0, run.output);
  assert.match(run.output, /SUCCESS/);
});

test('the unit tests cover the first failure, a counter starting at 0, and the service down or not scraped', async () => {
  const tests = await readFile(RULE_TESTS, 'utf8');
  for (const alert of ['StarforgeRunFailed', 'StarforgeBackupFailed', 'StarforgeRunDegraded', 'StarforgeServiceDown', 'StarforgeServiceNotScraped']) {
    assert.match(tests, new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `a test expects ${alert} to fire`);
  }
});

test('every runbook_url is absolute, under the default base, anchored at its alert', async () => {
  const urls = runbookUrls(await readFile(RULES, 'utf8'));
  assert.ok(urls.length >= 15, `${urls.length} alerts`);
  for (const { alert, url } of urls) assert.equal(url, `${DEFAULT_RUNBOOK_BASE}#${alert.toLowerCase()}`, alert);
});

test('rendered for another deployment: every runbook_url under the given base, the up/absent alerts on the given job', { skip: promtoolSkip() }, async () => {
  const source = await readFile(RULES, 'utf8');
  const base = 'https://wiki.example.com/ops/starforge/README.md';
  const rendered = renderAlertRules(source, { runbookBase: base, job: 'sfm-prod' });
  for (const { alert, url } of runbookUrls(rendered)) assert.equal(url, `${base}#${alert.toLowerCase()}`);
  assert.match(rendered, /expr: up\{job="sfm-prod"\} == 0/);
  assert.match(rendered, /expr: absent\(up\{job="sfm-prod"\}\)/);
  assert.equal(rendered.includes(DEFAULT_RUNBOOK_BASE), false);
  const dir = await mkdtemp(join(tmpdir(), 'sf-alerts-'));
  try {
    const file = join(dir, 'alerts.yml');
    await writeFile(file, rendered);
    const run = promtool(['check', 'rules', file]);
    assert.equal(run.status, 0, run.output);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(renderAlertRules(source), source, 'the committed file is the rendering with the defaults');
});

test('a bad runbook base or job is refused', async () => {
  const source = await readFile(RULES, 'utf8');
  for (const runbookBase of ['ops/README.md', 'ftp://x/y', 'https://x/y#z', 'https://x/a"b']) {
    assert.throws(() => renderAlertRules(source, { runbookBase }), RenderError, runbookBase);
  }
  assert.throws(() => renderAlertRules(source, { job: 'a"b' }), RenderError);
});
