import { ApiError, UnreachableError } from './errors.js';
import { displayUrl, type Connection } from './config.js';

// A deliberately small client: one request function, JSON in, JSON or text
// out, problem+json turned into ApiError, network failures into UnreachableError.

export const REQUEST_TIMEOUT_MS = 30_000;

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  /** Defaults to JSON. */
  accept?: string;
  timeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  contentType: string;
  text: string;
  /** The parsed body when it is JSON, else undefined. */
  json: unknown;
}

export interface StreamOptions {
  query?: Query;
  headers?: Record<string, string>;
  /** Ends the request (and the body) when it fires. */
  signal: AbortSignal;
}

export interface Client {
  readonly baseUrl: string;
  request(method: 'GET' | 'POST', path: string, opts?: RequestOptions): Promise<ApiResponse>;
  /** A GET whose text/event-stream body is read as it comes; a non-2xx or a non-stream answer is an ApiError. */
  stream(path: string, opts: StreamOptions): Promise<ReadableStream<Uint8Array>>;
  get<T = unknown>(path: string, query?: Query): Promise<T>;
  post<T = unknown>(path: string, body: unknown, headers?: Record<string, string>): Promise<T>;
}

function networkCode(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'ETIMEDOUT (no answer in time)';
  const cause = (err as { cause?: { code?: unknown; errors?: Array<{ code?: unknown }>; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  const nested = cause?.errors?.find((e) => typeof e.code === 'string')?.code;
  if (typeof nested === 'string') return nested;
  if (typeof cause?.message === 'string' && cause.message) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

function isJson(contentType: string): boolean {
  return /^application\/([\w.+-]*\+)?json\b/i.test(contentType);
}

function problemOf(status: number, statusText: string, contentType: string, text: string, json: unknown): ApiError {
  const body = json && typeof json === 'object' ? (json as Record<string, unknown>) : {};
  const title = typeof body.title === 'string' && body.title ? body.title : statusText || 'Error';
  let detail = typeof body.detail === 'string' ? body.detail : '';
  if (!detail && !isJson(contentType)) detail = text.trim().split('\n')[0]?.slice(0, 300) ?? '';
  const fieldErrors = Array.isArray(body.errors)
    ? body.errors.map((e: { path?: unknown; message?: unknown }) => ({ path: String(e?.path ?? ''), message: String(e?.message ?? '') }))
    : [];
  return new ApiError(status, title, detail, fieldErrors, json);
}

export function createClient(conn: Connection, userAgent: string): Client {
  const base = conn.baseUrl.href.replace(/\/+$/, '');
  const shown = displayUrl(conn.baseUrl);

  async function request(method: 'GET' | 'POST', path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    const url = new URL(base + path);
    for (const [key, value] of Object.entries(opts.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      accept: opts.accept ?? 'application/json, application/problem+json',
      authorization: `Bearer ${conn.token}`,
      'user-agent': userAgent,
      ...opts.headers,
    };
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: payload,
        // Never follow a redirect with the bearer token attached; report it instead.
        redirect: 'manual',
        signal: AbortSignal.timeout(opts.timeoutMs ?? REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new UnreachableError(shown, networkCode(err));
    }
    const contentType = res.headers.get('content-type') ?? '';
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new UnreachableError(shown, networkCode(err));
    }
    let json: unknown;
    if (isJson(contentType) && text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      throw new ApiError(res.status, res.statusText || 'Redirect', `the service redirected${location ? ` to ${displayUrl(new URL(location, url))}` : ''}; point SFM_URL at the final address`, [], json);
    }
    if (res.status < 200 || res.status >= 300) throw problemOf(res.status, res.statusText, contentType, text, json);
    return { status: res.status, contentType, text, json };
  }

  /** The JSON body; a 2xx that is not JSON means SFM_URL points at something else. */
  function jsonOf(res: ApiResponse, path: string): unknown {
    if (res.json === undefined) {
      throw new ApiError(res.status, 'Unexpected answer', `${path} answered ${res.contentType || 'without a content type'}, not JSON: is SFM_URL (${shown}) the migration service?`, [], undefined);
    }
    return res.json;
  }

  async function stream(path: string, opts: StreamOptions): Promise<ReadableStream<Uint8Array>> {
    const url = new URL(base + path);
    for (const [key, value] of Object.entries(opts.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    // Only the answer's head has a time limit: the body lasts as long as the caller wants.
    const abort = new AbortController();
    const follow = () => abort.abort(opts.signal.reason);
    if (opts.signal.aborted) follow();
    else opts.signal.addEventListener('abort', follow, { once: true });
    const timer = setTimeout(() => abort.abort(new DOMException('no answer in time', 'TimeoutError')), REQUEST_TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { accept: 'text/event-stream, application/problem+json', authorization: `Bearer ${conn.token}`, 'user-agent': userAgent, ...opts.headers },
        redirect: 'manual',
        signal: abort.signal,
      });
    } catch (err) {
      throw new UnreachableError(shown, networkCode(abort.signal.reason instanceof DOMException ? abort.signal.reason : err));
    } finally {
      clearTimeout(timer);
    }
    const contentType = res.headers.get('content-type') ?? '';
    if (res.status === 200 && /^text\/event-stream\b/i.test(contentType) && res.body) return res.body;
    const text = await res.text().catch(() => '');
    let json: unknown;
    try {
      json = isJson(contentType) && text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status >= 200 && res.status < 300) throw new ApiError(res.status, 'Not a stream', `${path} answered ${contentType || 'without a content type'}, not text/event-stream`, [], json);
    throw problemOf(res.status, res.statusText, contentType, text, json);
  }

  return {
    baseUrl: shown,
    request,
    stream,
    async get<T>(path: string, query?: Query) {
      return jsonOf(await request('GET', path, { query }), path) as T;
    },
    async post<T>(path: string, body: unknown, headers?: Record<string, string>) {
      return jsonOf(await request('POST', path, { body, headers }), path) as T;
    },
  };
}
