// The alert rules (ops/prometheus/alerts.yml) point each alert's runbook_url
// at its section of ops/README.md and watch the scrape job by name. Both
// depend on the deployment: where the repository's docs are served and what
// the Prometheus job is called. The committed file uses the defaults below;
// `npm run alerts -- --runbook-base URL --job NAME` renders it for another
// deployment (plain text rewriting: the file stays exactly as reviewed).

/** Where ops/README.md is served; each alert's anchor is appended as #alertname. */
export const DEFAULT_RUNBOOK_BASE = 'https://github.com/starforge/starforge-migration-service/blob/main/ops/README.md';
/** The scrape job of ops/README.md's example scrape config. */
export const DEFAULT_JOB = 'starforge-migrations';

export interface RenderOptions {
  runbookBase?: string;
  job?: string;
}

export class RenderError extends Error {}

function checkBase(base: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new RenderError(`--runbook-base must be an absolute URL, got "${base}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RenderError('--runbook-base must be an http(s) URL');
  if (url.hash || base.includes('#')) throw new RenderError('--runbook-base must not have a #fragment: each alert appends its own');
  if (/["\\\s]/.test(base)) throw new RenderError('--runbook-base must not contain quotes, backslashes or spaces');
  return base;
}

function checkJob(job: string): string {
  if (!/^[A-Za-z0-9_.:/-]{1,200}$/.test(job)) throw new RenderError(`--job must be a Prometheus job name (letters, digits, _ . : / -), got "${job}"`);
  return job;
}

/** The alert rules with every runbook_url under `runbookBase` and the up/absent alerts on `job`. */
export function renderAlertRules(text: string, opts: RenderOptions = {}): string {
  const base = checkBase(opts.runbookBase ?? DEFAULT_RUNBOOK_BASE);
  const job = checkJob(opts.job ?? DEFAULT_JOB);
  let urls = 0;
  const out = text
    .replace(/^(\s*runbook_url: )"[^"#]*#([a-z0-9-]+)"$/gm, (_m, indent: string, anchor: string) => {
      urls += 1;
      return `${indent}"${base}#${anchor}"`;
    })
    .split(`job="${DEFAULT_JOB}"`).join(`job="${job}"`);
  if (urls === 0) throw new RenderError('no runbook_url found: is this the alerts file?');
  return out;
}

/** Every runbook_url of a rules file, by alert name (in file order). */
export function runbookUrls(text: string): Array<{ alert: string; url: string }> {
  const out: Array<{ alert: string; url: string }> = [];
  let alert: string | null = null;
  for (const line of text.split('\n')) {
    const name = /^\s*- alert: (\S+)\s*$/.exec(line);
    if (name) alert = name[1]!;
    const url = /^\s*runbook_url: "([^"]*)"\s*$/.exec(line);
    if (url && alert) out.push({ alert, url: url[1]! });
  }
  return out;
}
