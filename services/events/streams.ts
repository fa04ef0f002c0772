import type { ServiceContext } from '../context.js';
import { badRequest, ServiceError } from '../errors.js';
import type { Principal } from '../principal.js';
import type { RunsService } from '../runs/runs-service.js';
import { createEventFeed, type EventFilter } from './feed.js';

export type EventStreamSettings = ServiceContext['config']['eventStreams'];

export interface StreamTicket {
  filter: EventFilter;
  /** Gives the slot back; idempotent. */
  release(): void;
}

const LAST_EVENT_ID = /^\d{1,15}$/;

/**
 * Admission to the live event stream: a per-replica and a per-subject limit
 * (an open stream holds a socket and a buffer), and the filters checked the
 * way GET /v1/runs checks them. The feed itself is shared by every stream.
 */
export function createEventStreams(ctx: ServiceContext & { runs: RunsService }, settings: EventStreamSettings) {
  const feed = createEventFeed({ control: ctx.control, log: ctx.log, pollMs: settings.pollMs });
  const perSubject = new Map<string, number>();
  let open = 0;

  function parseLastEventId(header: string | undefined): number | undefined {
    if (header === undefined || header.trim() === '') return undefined;
    if (!LAST_EVENT_ID.test(header.trim())) {
      throw badRequest('Last-Event-ID must be the id of an event this stream sent (a non-negative integer).', { errors: [{ path: 'headers/last-event-id', message: 'is not an event id' }] });
    }
    return Number(header.trim());
  }

  async function admit(principal: Principal, query: { environment?: string; run?: string }): Promise<StreamTicket> {
    if (query.environment !== undefined && !ctx.config.environments[query.environment]) {
      throw badRequest(`Unknown environment "${query.environment}".`, { errors: [{ path: 'querystring/environment', message: 'is not a configured environment' }] });
    }
    if (query.run !== undefined) await ctx.runs.get(query.run);
    if (open >= settings.max) {
      throw new ServiceError(503, 'too-many-streams', settings.max === 0
        ? 'Event streaming is turned off on this replica (EVENT_STREAMS_MAX=0); poll GET /v1/runs/:id/events instead.'
        : `This replica already serves ${settings.max} event streams (EVENT_STREAMS_MAX); retry shortly or poll GET /v1/runs/:id/events.`, { retryAfterSeconds: 5 });
    }
    const mine = perSubject.get(principal.subject) ?? 0;
    if (mine >= settings.perSubject) {
      throw new ServiceError(429, 'too-many-streams', `${principal.subject} already has ${mine} event streams open on this replica (EVENT_STREAMS_PER_SUBJECT=${settings.perSubject}); close one first.`, { retryAfterSeconds: 5 });
    }
    open++;
    perSubject.set(principal.subject, mine + 1);
    let released = false;
    return {
      filter: { environment: query.environment, runId: query.run },
      release() {
        if (released) return;
        released = true;
        open--;
        const left = (perSubject.get(principal.subject) ?? 1) - 1;
        if (left > 0) perSubject.set(principal.subject, left);
        else perSubject.delete(principal.subject);
      },
    };
  }

  return {
    feed,
    admit,
    parseLastEventId,
    settings,
    get open() {
      return open;
    },
    close: () => feed.close(),
  };
}

export type EventStreams = ReturnType<typeof createEventStreams>;
