import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';

// Where the service is and who we are, from the environment only: a token on
// the command line would be visible to every user through `ps`.

export interface Connection {
  /** The base URL without userinfo, path kept (a service behind a prefix works). */
  baseUrl: URL;
  token: string;
}

/** The URL as it may be shown: userinfo removed, no trailing slash. */
export function displayUrl(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : new URL(url.href);
  } catch {
    return '<invalid URL>';
  }
  parsed.username = '';
  parsed.password = '';
  return parsed.href.replace(/\/+$/, '');
}

export function parseBaseUrl(raw: string, source: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${source} is not a valid URL (expected e.g. https://sfm.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${source} must be an http(s) URL, not ${url.protocol}`);
  }
  // fetch() refuses URLs with credentials, and we authenticate with the bearer token anyway.
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  return url;
}

function readToken(env: NodeJS.ProcessEnv): string {
  const inline = env.SFM_TOKEN;
  const file = env.SFM_TOKEN_FILE;
  if (inline && file) throw new UsageError('set only one of SFM_TOKEN and SFM_TOKEN_FILE');
  if (inline) {
    const token = inline.trim();
    if (token) return token;
  }
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`SFM_TOKEN_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const token = text.trim();
    if (!token) throw new UsageError(`SFM_TOKEN_FILE: ${file} is empty`);
    if (/\s/.test(token)) throw new UsageError(`SFM_TOKEN_FILE: ${file} must hold the token alone (one line)`);
    return token;
  }
  throw new UsageError('SFM_TOKEN (or SFM_TOKEN_FILE, a file holding the token) is not set');
}

/** The connection for one invocation: `--url` wins over SFM_URL. */
export function resolveConnection(env: NodeJS.ProcessEnv, urlOption: string | undefined): Connection {
  const raw = urlOption ?? env.SFM_URL;
  if (!raw) throw new UsageError('SFM_URL is not set (or pass --url <url>): the base URL of the migration service');
  const baseUrl = parseBaseUrl(raw, urlOption ? '--url' : 'SFM_URL');
  return { baseUrl, token: readToken(env) };
}
