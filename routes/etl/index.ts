import type { FastifyInstance } from 'fastify';
import { withProblems } from '../schemas.js';
import { EtlControlBody, EtlControlState, EtlHealth, EtlHealthQuery } from './schemas.js';

export async function etlRoutes(app: FastifyInstance): Promise<void> {
  const { etlHealth, etlControl } = app.services;

  app.get<{ Querystring: EtlHealthQuery }>('/health', {
    schema: {
      tags: ['etl'],
      summary: 'ETL health of an environment: backlog, oldest unprocessed age, last hour processed/failed, recent errors, pause flag',
      querystring: EtlHealthQuery,
      response: withProblems({ 200: EtlHealth }, [400, 401, 404, 409, 422, 503]),
    },
  }, async (request) => etlHealth.health(request.query.environment));

  app.post<{ Body: EtlControlBody }>('/pause', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['etl'],
      summary: "Pause the environment's ETL workers (sets etl_control.paused; audited as etl.paused)",
      body: EtlControlBody,
      response: withProblems({ 200: EtlControlState }, [400, 401, 403, 404, 409, 413, 415, 422, 503]),
    },
  }, async (request) => etlControl.pause(request.body.environment, request.principal!, request.body.reason));

  app.post<{ Body: EtlControlBody }>('/resume', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['etl'],
      summary: "Resume the environment's ETL workers (clears etl_control.paused; audited as etl.resumed); refused while a run holds them paused",
      body: EtlControlBody,
      response: withProblems({ 200: EtlControlState }, [400, 401, 403, 404, 409, 413, 415, 422, 503]),
    },
  }, async (request) => etlControl.resume(request.body.environment, request.principal!, request.body.reason));
}
