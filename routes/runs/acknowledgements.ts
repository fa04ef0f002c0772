import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { withProblems } from '../schemas.js';
import { RunId } from './schemas.js';

const AcknowledgeBody = Type.Object(
  {
    finding: Type.String({ pattern: '^[0-9a-f]{16}$', description: 'The `id` of a finding in the run\'s latest preflight report (GET /v1/runs/:id/preflight)' }),
    reason: Type.String({ minLength: 1, maxLength: 2000, description: 'Why the risk is accepted (audited; shown on the finding)' }),
  },
  { additionalProperties: false },
);
type AcknowledgeBody = Static<typeof AcknowledgeBody>;

const Acknowledgement = Type.Object({
  id: Type.Integer(),
  finding: Type.String({ description: 'The acknowledged finding\'s id' }),
  rule: Type.String(),
  migration: Type.Union([Type.String(), Type.Null()]),
  digest: Type.String({ description: 'The content it is bound to: a preflight of another digest does not inherit it' }),
  reason: Type.String(),
  by: Type.String(),
  role: Type.String(),
  at: Type.String({ format: 'date-time' }),
});

const AcknowledgementList = Type.Object({ items: Type.Array(Acknowledgement) });

/** Approvers accept a preflight finding for the run's digest, without editing (and re-hashing) the migration file. */
export async function acknowledgementRoutes(app: FastifyInstance): Promise<void> {
  const { acknowledgements, runs } = app.services;

  app.post<{ Params: { id: string }; Body: AcknowledgeBody }>('/:id/acknowledgements', {
    config: { auth: ['engineering', 'sre'] },
    schema: {
      tags: ['runs'],
      summary: 'Acknowledge one finding of the latest preflight report (engineering, sre or admin; never the requester), for the run\'s digest',
      description: 'Audited as finding.acknowledged. The finding stays in the report, shown as acknowledged (`via: "api"`); an error becomes a warning that no longer fails preflight, '
        + 'and a preflight_failed run with no unacknowledged error left moves to awaiting_approval (audited). A later preflight of the same digest keeps the acknowledgement; '
        + 'one of another digest does not. 409: the finding is not in the latest report, cannot be acknowledged (target unreachable, rehearsal failed, ...), is already acknowledged, '
        + 'the run is not preflight_failed or awaiting_approval, or another run holds the environment.',
      params: RunId,
      body: AcknowledgeBody,
      response: withProblems({ 201: Type.Object({ acknowledgement: Acknowledgement, run: Type.Ref('Run') }) }, [400, 401, 403, 404, 409, 413, 415]),
    },
  }, async (request, reply) => {
    const acknowledgement = await acknowledgements.acknowledge(request.params.id, request.principal!, request.body);
    return reply.code(201).send({ acknowledgement, run: await runs.get(request.params.id) });
  });

  app.get<{ Params: { id: string } }>('/:id/acknowledgements', {
    schema: {
      tags: ['runs'],
      summary: 'Acknowledgements of the run\'s preflight findings given through the API, oldest first (all digests)',
      params: RunId,
      response: withProblems({ 200: AcknowledgementList }, [400, 401, 404]),
    },
  }, async (request) => {
    await runs.get(request.params.id);
    return { items: await acknowledgements.list(request.params.id) };
  });
}
