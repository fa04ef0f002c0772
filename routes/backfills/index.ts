import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { withProblems } from '../schemas.js';
import {
  BackfillDefinitions, BackfillEvents, BackfillFailures, BackfillId, BackfillList, ControlBody, CreateBackfillBody, DefinitionsQuery,
  FailuresQuery, ListBackfillsQuery, RetryFailuresBody,
} from './schemas.js';

const WRITE_ERRORS = [400, 401, 403, 404, 409, 413, 415, 422, 503];
const READ_ERRORS = [400, 401, 404, 422, 503];

export async function backfillRoutes(app: FastifyInstance): Promise<void> {
  const { backfills } = app.services;

  app.post<{ Body: CreateBackfillBody }>('', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['backfills'],
      summary: 'Start a backfill job: keyset batches of a definition in database/backfills, throttled, resumable, audited',
      description: 'The definition must exist (422) and fit the target: its table and indexed key column exist and its statements plan (422). '
        + 'One job with work left per backfill (409). With `failuresOf`, re-runs only the rows that job recorded as failed.',
      body: CreateBackfillBody,
      response: withProblems({ 202: Type.Ref('BackfillJob') }, WRITE_ERRORS),
    },
  }, async (request, reply) => {
    const job = await backfills.create(request.body, request.principal!);
    return reply.code(202).header('location', `/v1/backfills/${job.id}`).send(job);
  });

  app.get<{ Querystring: ListBackfillsQuery }>('', {
    schema: {
      tags: ['backfills'],
      summary: 'Backfill jobs, newest first (of one environment, or of every environment with a database)',
      querystring: ListBackfillsQuery,
      response: withProblems({ 200: BackfillList }, READ_ERRORS),
    },
  }, async (request) => backfills.list(request.query));

  app.get<{ Querystring: DefinitionsQuery }>('/definitions', {
    schema: {
      tags: ['backfills'],
      summary: "The backfill definitions of an environment's backfills directory, each validated",
      querystring: DefinitionsQuery,
      response: withProblems({ 200: BackfillDefinitions }, READ_ERRORS),
    },
  }, async (request) => backfills.definitions(request.query.environment));

  app.get<{ Params: { id: string } }>('/:id', {
    schema: { tags: ['backfills'], summary: 'One backfill job with its progress', params: BackfillId, response: withProblems({ 200: Type.Ref('BackfillJob') }, READ_ERRORS) },
  }, async (request) => backfills.get(request.params.id));

  app.get<{ Params: { id: string }; Querystring: FailuresQuery }>('/:id/failures', {
    schema: {
      tags: ['backfills'],
      summary: 'Rows the job recorded as failed (key, error), oldest first',
      params: BackfillId,
      querystring: FailuresQuery,
      response: withProblems({ 200: BackfillFailures }, READ_ERRORS),
    },
  }, async (request) => backfills.failures(request.params.id, request.query.limit ?? 100, request.query.after ?? 0));

  app.get<{ Params: { id: string } }>('/:id/events', {
    schema: {
      tags: ['backfills'],
      summary: "The job's audit events from the target, oldest first (also copied to the control database's audit trail)",
      params: BackfillId,
      response: withProblems({ 200: BackfillEvents }, READ_ERRORS),
    },
  }, async (request) => backfills.events(request.params.id));

  const control = (action: 'pause' | 'resume' | 'cancel', summary: string) => {
    app.post<{ Params: { id: string }; Body: ControlBody }>(`/:id/${action}`, {
      config: { auth: ['operator'] },
      schema: { tags: ['backfills'], summary, params: BackfillId, body: ControlBody, response: withProblems({ 200: Type.Ref('BackfillJob') }, WRITE_ERRORS) },
    }, async (request) => backfills[action](request.params.id, request.principal!, request.body?.reason));
  };
  control('pause', 'Pause a pending or running job; returns once no batch of it is in flight (409 from any other status)');
  control('resume', 'Resume a paused job from its checkpoint (409 unless paused)');
  control('cancel', 'Cancel a job that has work left; rows already changed stay changed (409 once finished)');

  app.post<{ Params: { id: string }; Body: RetryFailuresBody }>('/:id/retry-failures', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['backfills'],
      summary: 'Start a job re-running only the rows this (stopped) job recorded as failed → 202 + the new job',
      params: BackfillId,
      body: RetryFailuresBody,
      response: withProblems({ 202: Type.Ref('BackfillJob') }, WRITE_ERRORS),
    },
  }, async (request, reply) => {
    const job = await backfills.retryFailures(request.params.id, request.principal!, request.body ?? {});
    return reply.code(202).header('location', `/v1/backfills/${job.id}`).send(job);
  });
}
