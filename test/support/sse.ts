// A small text/event-stream reader for tests: node:http (fetch keeps a spare
// socket open after an abort, which holds up the server's close), frames
// parsed as the EventSource spec does (id, event, data, comments).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestApp } from './app.js';

export interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
  retry?: number;
}

export interface OpenStream {
  status: number;
  headers: { get(name: string): string | null };
  /** Every frame read so far (comments included). */
  frames: Frame[];
  /** The events (frames with data) read so far, data parsed as JSON. */
  events(): Array<{ id: number; event: string; data: Record<string, unknown> }>;
  /** Resolves with the first frame (from the start) that `match` accepts; rejects after `timeoutMs`. */
  waitFor(match: (frame: Frame) => boolean, timeoutMs?: number, what?: string): Promise<Frame>;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  close(): void;
  /** The body text when the server answered with something other than a stream. */
  text?: string;
}

export function baseUrl(t: TestApp): string {
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}

export async function openStream(url: string, token: string | null, opts: { query?: Record<string, string>; lastEventId?: string | number } = {}): Promise<OpenStream> {
  const target = new URL('/v1/events/stream', url);
  for (const [k, v] of Object.entries(opts.query ?? {})) target.searchParams.set(k, v);
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(target, { headers, agent: false }, resolve).on('error', reject);
  });
  const responseHeaders = { get: (name: string) => { const v = res.headers[name.toLowerCase()]; return v === undefined ? null : String(v); } };
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  const notify = () => { for (const w of waiters) w(); };
  if (!(responseHeaders.get('content-type') ?? '').startsWith('text/event-stream')) {
    let text = '';
    for await (const chunk of res) text += String(chunk);
    return { status: res.statusCode!, headers: responseHeaders, frames, events: () => [], waitFor: () => Promise.reject(new Error(`not a stream: ${res.statusCode} ${text}`)), ended: Promise.resolve(), close: () => undefined, text };
  }
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const frame: Frame = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) frame.comment = line.slice(1).trim();
            else {
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'id') frame.id = value;
              else if (field === 'event') frame.event = value;
              else if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
              else if (field === 'retry') frame.retry = Number(value);
            }
          }
          frames.push(frame);
          notify();
        }
      }
    } catch {
      // aborted by close()
    } finally {
      notify();
    }
  })();
  let done = false;
  void ended.then(() => { done = true; notify(); });
  return {
    status: res.statusCode!,
    headers: responseHeaders,
    frames,
    ended,
    events: () => frames.filter((f) => f.data !== undefined && f.event === 'run-event').map((f) => ({ id: Number(f.id), event: f.event!, data: JSON.parse(f.data!) as Record<string, unknown> })),
    waitFor(match, timeoutMs = 10_000, what = 'a matching frame') {
      return new Promise<Frame>((resolve, reject) => {
        const check = () => {
          const found = frames.find(match);
          if (found) {
            cleanup();
            resolve(found);
          } else if (done) {
            cleanup();
            reject(new Error(`stream ended without ${what}; frames: ${JSON.stringify(frames.slice(-5))}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(frames.slice(-5))}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => res.destroy(),
  };
}
