import { ApiError, send } from './client.js';
import type { AuditEvent } from './types.js';

// Live events for the open page: GET /v1/events/stream read with fetch
// (EventSource cannot send the Authorization header), resumed with
// Last-Event-ID after a drop. Where the service cannot stream (turned off, or
// full: 503/429) the page is refreshed by polling instead.

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'polling';

export interface LiveOptions {
  environment?: string;
  run?: string;
  /** Resume after this event id (e.g. the last one the page already shows). */
  after?: number;
  onEvent(event: AuditEvent): void;
  /** Polling mode: refresh what the page shows. */
  onPoll(): void;
  onState(state: LiveState): void;
}

const POLL_MS = 5000;

async function* frames(body: ReadableStream<Uint8Array>): AsyncGenerator<{ id?: string; event: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id: string | undefined;
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = value;
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length) yield { id, event, data: data.join('\n') };
    }
  }
}

const HIDDEN_GRACE_MS = 15_000;

/**
 * Starts following; the returned function stops it. A browser opens at most
 * six HTTP/1.1 connections to one server and each stream holds one, so a tab
 * left in the background gives its stream up and, once shown again, resumes
 * from the last event it saw and refreshes.
 */
export function follow(opts: LiveOptions): () => void {
  let seen = opts.after;
  const start = () => open(opts, seen, (id) => { seen = id; });
  let stopStream = start();
  let hiddenTimer: number | undefined;
  let parked = false;
  const onVisibility = () => {
    window.clearTimeout(hiddenTimer);
    if (document.hidden) {
      hiddenTimer = window.setTimeout(() => {
        parked = true;
        stopStream();
      }, HIDDEN_GRACE_MS);
    } else if (parked) {
      parked = false;
      stopStream = start();
      opts.onPoll();
    }
  };
  document.addEventListener('visibilitychange', onVisibility);
  return () => {
    document.removeEventListener('visibilitychange', onVisibility);
    window.clearTimeout(hiddenTimer);
    stopStream();
  };
}

function open(opts: LiveOptions, after: number | undefined, onSeen: (id: number) => void): () => void {
  const abort = new AbortController();
  let lastId = after;
  let poller: number | undefined;

  const query = new URLSearchParams();
  if (opts.environment) query.set('environment', opts.environment);
  if (opts.run) query.set('run', opts.run);

  async function run(): Promise<void> {
    let failures = 0;
    opts.onState('connecting');
    while (!abort.signal.aborted) {
      try {
        const res = await send('GET', `/v1/events/stream${query.size ? `?${query}` : ''}`, {
          accept: 'text/event-stream',
          signal: abort.signal,
          headers: lastId !== undefined ? { 'last-event-id': String(lastId) } : {},
        });
        if (!res.body) throw new Error('no body');
        failures = 0;
        opts.onState('live');
        for await (const frame of frames(res.body)) {
          if (frame.event !== 'run-event') continue;
          const event = JSON.parse(frame.data) as AuditEvent;
          if (lastId !== undefined && event.id <= lastId) continue;
          lastId = event.id;
          onSeen(event.id);
          opts.onEvent(event);
        }
      } catch (err) {
        if (abort.signal.aborted) return;
        if (err instanceof ApiError && [404, 429, 503].includes(err.status)) {
          opts.onState('polling');
          poller = window.setInterval(() => opts.onPoll(), POLL_MS);
          return;
        }
        if (err instanceof ApiError && err.status === 401) return;
        failures++;
      }
      if (abort.signal.aborted) return;
      opts.onState('reconnecting');
      // Caught up by Last-Event-ID once back; the page also refreshes in case it was long.
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * 2 ** Math.min(failures, 5))));
      opts.onPoll();
    }
  }

  void run();
  return () => {
    abort.abort();
    window.clearInterval(poller);
  };
}
