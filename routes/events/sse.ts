import type { ServerResponse } from 'node:http';
import type { AuditEvent } from '../../services/audit.js';

export interface SseOptions {
  heartbeatMs: number;
  /** Bytes of frames held back for a slow reader before the stream is dropped. */
  bufferBytes: number;
}

interface Frame {
  text: string;
  id: number | null;
}

// A reader that stopped reading keeps its socket; give a final frame this long to drain, then cut it.
const END_GRACE_MS = 30_000;

const eventFrame = (event: AuditEvent): Frame => ({
  // JSON.stringify escapes newlines, so the payload is always one data line.
  text: `id: ${event.id}\nevent: run-event\ndata: ${JSON.stringify(event)}\n\n`,
  id: event.id,
});

/**
 * One text/event-stream response. Frames wait in a queue bounded in bytes
 * while the socket is backed up; past the bound the reader is told why
 * (`event: overflow`, with the last id it was sent, to resume from) and the
 * stream ends, so one slow reader never holds an unbounded buffer.
 */
export class SseStream {
  private readonly queue: Frame[] = [];
  private queuedBytes = 0;
  private blocked = false;
  /** Live frames wait while a replay is being written. */
  private holding = true;
  private lastWrittenId: number | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  private closeHandlers: Array<() => void> = [];
  closed = false;

  constructor(private readonly res: ServerResponse, private readonly opts: SseOptions) {
    res.on('close', () => {
      // The reader went away: the socket may only be half-closed, and an
      // unfinished response would keep it (and server.close()) waiting.
      if (!res.writableEnded) res.destroy();
      this.finish();
    });
  }

  open(headers: Record<string, string>): void {
    this.res.socket?.setTimeout(0);
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Tell nginx-style proxies not to buffer the stream.
      'x-accel-buffering': 'no',
      ...headers,
    });
    this.res.write(`retry: 3000\n: stream open\n\n`);
    this.heartbeat = setInterval(() => this.enqueue({ text: `: heartbeat\n\n`, id: null }), this.opts.heartbeatMs);
    this.heartbeat.unref();
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeHandlers.push(fn);
  }

  /** A live event (queued behind any replay in progress). */
  event(event: AuditEvent): void {
    this.enqueue(eventFrame(event));
  }

  /** Writes a page of older events, waiting for the socket to drain. */
  async replay(events: AuditEvent[]): Promise<void> {
    for (const event of events) {
      if (this.closed) return;
      const frame = eventFrame(event);
      this.lastWrittenId = frame.id;
      if (!this.res.write(frame.text)) await this.drained();
    }
  }

  /** The replay is over: live events flow. */
  live(): void {
    this.holding = false;
    this.pump();
  }

  /** Ends the stream with a last event saying why. */
  end(type: string, detail: string): void {
    if (this.closed) return;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.res.write(`event: ${type}\ndata: ${JSON.stringify({ detail, lastEventId: this.lastWrittenId })}\n\n`);
    this.res.end();
    const cut = setTimeout(() => this.res.destroy(), END_GRACE_MS);
    cut.unref();
    this.res.once('close', () => clearTimeout(cut));
    this.finish();
  }

  private enqueue(frame: Frame): void {
    if (this.closed) return;
    this.queue.push(frame);
    this.queuedBytes += Buffer.byteLength(frame.text);
    if (this.queuedBytes > this.opts.bufferBytes) {
      this.end('overflow', `This stream fell more than ${Math.round(this.opts.bufferBytes / 1024)} KB behind and was dropped; reconnect with Last-Event-ID to resume.`);
      return;
    }
    this.pump();
  }

  private pump(): void {
    while (!this.closed && !this.blocked && !this.holding && this.queue.length > 0) {
      const frame = this.queue.shift()!;
      this.queuedBytes -= Buffer.byteLength(frame.text);
      if (frame.id !== null) this.lastWrittenId = frame.id;
      if (!this.res.write(frame.text)) {
        this.blocked = true;
        this.res.once('drain', () => {
          this.blocked = false;
          this.pump();
        });
      }
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.once('drain', done);
      this.res.once('close', done);
    });
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const fn of this.closeHandlers.splice(0)) fn();
  }
}
