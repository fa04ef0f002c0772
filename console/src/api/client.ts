import { storedToken } from './session.js';

/** A problem+json answer (or another non-2xx) from the API. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: Array<{ path: string; message: string }> = [],
  ) {
    super(detail || title);
    this.name = 'ApiError';
  }
}

/** The service did not answer at all. */
export class ServiceDownError extends Error {
  constructor() {
    super('The migration service cannot be reached. It may be restarting or down; the page retries when you act again.');
    this.name = 'ServiceDownError';
  }
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called when any request answers 401: the token stopped being accepted. */
export function onUnauthorized(fn: Listener): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export interface RequestOptions {
  body?: unknown;
  /** Use this token instead of the stored one (sign-in checks a token before keeping it). */
  token?: string;
  accept?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

async function problemOf(res: Response): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    // not JSON: keep the status line
  }
  const errors = Array.isArray(body.errors)
    ? (body.errors as Array<Record<string, unknown>>).map((e) => ({ path: String(e.path ?? ''), message: String(e.message ?? '') }))
    : [];
  return new ApiError(res.status, typeof body.title === 'string' ? body.title : res.statusText, typeof body.detail === 'string' ? body.detail : '', errors);
}

export async function send(method: 'GET' | 'POST', path: string, opts: RequestOptions = {}): Promise<Response> {
  const token = opts.token ?? storedToken();
  const headers: Record<string, string> = { accept: opts.accept ?? 'application/json, application/problem+json', ...opts.headers };
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
      signal: opts.signal,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ServiceDownError();
  }
  if (res.status === 401 && opts.token === undefined) for (const fn of unauthorizedListeners) fn();
  if (!res.ok) {
    // A proxy in front of a stopped service answers 502/504 without a problem body.
    if ([502, 504].includes(res.status) && !(res.headers.get('content-type') ?? '').includes('json')) throw new ServiceDownError();
    throw await problemOf(res);
  }
  return res;
}

export async function getJson<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  return (await (await send('GET', path, opts)).json()) as T;
}

export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  return (await (await send('POST', path, { body })).json()) as T;
}

export async function getText(path: string): Promise<string> {
  return (await send('GET', path, { accept: 'text/plain, application/problem+json' })).text();
}

/** The value, or null when the API answers 404 (a report not written yet, an endpoint this service does not have). */
export async function getOptional<T>(path: string): Promise<T | null> {
  try {
    return await getJson<T>(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const fields = err.errors.map((e) => `${e.path} ${e.message}`).join('; ');
    return `${err.status} ${err.title}: ${err.detail}${fields && !err.detail.includes(fields) ? ` (${fields})` : ''}`;
  }
  if (err instanceof ServiceDownError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

export const enc = encodeURIComponent;
