// npm run alerts -- [--runbook-base URL] [--job NAME] [--output FILE]
// Prints (or writes) ops/prometheus/alerts.yml for this deployment: absolute
// runbook URLs under URL (where ops/README.md is served) and the service-down
// alerts on the scrape job NAME. Check the result with `promtool check rules`.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RenderError, renderAlertRules } from '../ops/alert-rules.js';
import { PROJECT_ROOT } from '../../database/paths.js';

try {
  const { values } = parseArgs({
    options: { 'runbook-base': { type: 'string' }, job: { type: 'string' }, output: { type: 'string' } },
    strict: true,
  });
  const source = await readFile(join(PROJECT_ROOT, 'ops/prometheus/alerts.yml'), 'utf8');
  const rendered = renderAlertRules(source, { runbookBase: values['runbook-base'], job: values.job });
  if (values.output) await writeFile(values.output, rendered);
  else process.stdout.write(rendered);
} catch (err) {
  const usage = err instanceof RenderError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
  process.stderr.write(`render-alerts: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(usage ? 2 : 1);
}
