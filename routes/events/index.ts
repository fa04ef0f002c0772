import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ServiceError } from '../../services/errors.js';
import { withProblems } from '../schemas.js';
import { SseStream } from './sse.js';

const StreamQuery = Type.Object(
  {
    environment: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'Only events of this environment' })),
    run: Type.Optional(Type.String({ format: 'uuid', description: 'Only events of this run' })),
  },
  { additionalProperties: false },
);
type StreamQuery = Static<typeof StreamQuery>;

const StreamHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ maxLength: 32, description: 'Resume after this event id: the events since are replayed first' })),
});

const REPLAY_PAGE = 200;

export async function eventRoutes(app: FastifyInstance): Promise<void> {
  const streams = app.services.events;
  const open = new Set<SseStream>();

  // Open streams never end by themselves: end them before the server waits for its connections.
  app.addHook('preClose', async () => {
    for (const sse of open) sse.end('shutdown', 'The service is shutting down; reconnect with Last-Event-ID to resume.');
  });

  app.get<{ Querystring: StreamQuery; Headers: { 'last-event-id'?: string } }>('/stream', {
    schema: {
      tags: ['events'],
      summary: 'Live audit events (text/event-stream), optionally of one environment or run',
      description: [
        'Server-sent events: each audit event (the shape of GET /v1/runs/:id/events) as `event: run-event` with `id:` its event id, in id order;',
        'a `: heartbeat` comment on an idle stream. Send `Last-Event-ID` to get the events after that id first (resumption is exact: nothing missed, nothing twice).',
        'A reader that falls behind by more than EVENT_STREAM_BUFFER_KB gets `event: overflow` (with `lastEventId`) and the stream ends;',
        'at shutdown, `event: shutdown`. Limits per replica (EVENT_STREAMS_MAX: 503) and per subject (EVENT_STREAMS_PER_SUBJECT: 429), both with Retry-After.',
      ].join(' '),
      querystring: StreamQuery,
      headers: StreamHeaders,
      response: withProblems({ 200: Type.Unsafe<string>({ description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }) }, [400, 401, 404, 429, 503]),
    },
  }, async (request, reply) => {
    const after = streams.parseLastEventId(request.headers['last-event-id']);
    let ticket;
    try {
      ticket = await streams.admit(request.principal!, request.query);
    } catch (err) {
      if (err instanceof ServiceError && typeof err.extra.retryAfterSeconds === 'number') reply.header('retry-after', String(err.extra.retryAfterSeconds));
      throw err;
    }
    const sse = new SseStream(reply.raw, { heartbeatMs: streams.settings.heartbeatMs, bufferBytes: streams.settings.bufferBytes });
    let subscription;
    try {
      subscription = await streams.feed.subscribe(ticket.filter, (event) => {
        if (after === undefined || event.id > after) sse.event(event);
      });
    } catch (err) {
      ticket.release();
      throw err;
    }
    reply.hijack();
    sse.open({ 'x-request-id': request.id });
    open.add(sse);
    sse.onClose(() => {
      subscription.unsubscribe();
      ticket.release();
      open.delete(sse);
    });
    try {
      let cursor = after;
      while (cursor !== undefined && cursor < subscription.watermark && !sse.closed) {
        const page = await streams.feed.replay(cursor, subscription.watermark, ticket.filter, REPLAY_PAGE);
        await sse.replay(page);
        cursor = page.length < REPLAY_PAGE ? undefined : page[page.length - 1]!.id;
      }
      sse.live();
    } catch (err) {
      request.log.warn({ err }, 'event stream replay failed');
      sse.end('error', 'The events since Last-Event-ID could not be read; reconnect with the same Last-Event-ID.');
    }
  });
}
