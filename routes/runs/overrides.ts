import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { withProblems } from '../schemas.js';
import { OverrideDecisionBody, WindowOverride } from './policy-schemas.js';
import { RunId } from './schemas.js';

/**
 * Co-signed window overrides. An operator asks with POST /v1/runs/:id/apply
 * {confirm, overrideWindow: true, reason} outside the windows; a different sre
 * decides here, and an approval starts the apply.
 */
export async function overrideRoutes(app: FastifyInstance): Promise<void> {
  const { overrides } = app.services;

  app.get<{ Params: { id: string } }>('/:id/overrides', {
    schema: { tags: ['runs'], summary: 'Window override requests of the run, oldest first', params: RunId, response: withProblems({ 200: Type.Array(WindowOverride) }, [400, 401, 404]) },
  }, async (request) => overrides.list(request.params.id));

  app.post<{ Params: { id: string }; Body: OverrideDecisionBody }>('/:id/overrides/approvals', {
    config: { auth: ['sre'] },
    schema: {
      tags: ['runs'],
      summary: 'Approve (and start the apply now) or reject the open window override (an sre other than the operator who asked)',
      params: RunId,
      body: OverrideDecisionBody,
      response: withProblems({ 201: WindowOverride }, [400, 401, 403, 404, 409, 413, 415, 422, 503]),
    },
  }, async (request, reply) => reply.code(201).send(await overrides.decide(request.params.id, request.principal!, request.body)));
}
