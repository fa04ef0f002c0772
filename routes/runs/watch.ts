import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { withProblems } from '../schemas.js';
import { RunId } from './schemas.js';

const WatchEndBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 2000, description: 'Why the watch ends before its time (audited as watch.ended_early)' }) },
  { additionalProperties: false },
);
type WatchEndBody = Static<typeof WatchEndBody>;

/** The post-apply watch as a phase an operator can act on. */
export async function watchRoutes(app: FastifyInstance): Promise<void> {
  const { apply, runs } = app.services;

  app.post<{ Params: { id: string }; Body: WatchEndBody }>('/:id/watch/end', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['runs'],
      summary: 'End the post-apply watch of a monitoring run now (operator): succeeded or degraded on what the watch has seen so far',
      description: 'Judged like a full watch (verify.degradeFactor and verify.degradeMinFailures) over the ETL activity from the watch\'s start to now; '
        + 'audited as watch.ended_early. 409 when the run is not monitoring (its watch already ended).',
      params: RunId,
      body: WatchEndBody,
      response: withProblems({ 200: Type.Ref('Run') }, [400, 401, 403, 404, 409, 413, 415, 503]),
    },
  }, async (request) => {
    await apply.endWatch(request.params.id, request.principal!, request.body.reason);
    return runs.get(request.params.id);
  });
}
