import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../../services/errors.js';
import { renderPreflightMarkdown } from '../../services/preflight/markdown.js';
import { withProblems } from '../schemas.js';
import { renderApplyMarkdown } from '../../services/apply/markdown.js';
import { renderPromotionMarkdown } from '../../services/policy/promotion.js';
import { acknowledgementRoutes } from './acknowledgements.js';
import { overrideRoutes } from './overrides.js';
import { rollbackPlanRoutes } from './rollback-plan.js';
import { watchRoutes } from './watch.js';
import {
  ApplyBody, ApprovalBody, AuditEvent, CancelBody, CloseBody, CreateRunBody, ReapplyBody, IdempotencyHeaders, ListRunsQuery, PreflightQuery,
  PreflightReport, ReportQuery, RollbackBody, RollbackDecisionBody, RollbackRequest, RunId, RunList, RunReport,
} from './schemas.js';

export async function runRoutes(app: FastifyInstance): Promise<void> {
  const { runs, approvals, preflight, apply, rollback, logs } = app.services;
  await app.register(overrideRoutes);
  await app.register(rollbackPlanRoutes);
  await app.register(watchRoutes);
  await app.register(acknowledgementRoutes);

  app.post<{ Body: CreateRunBody; Headers: { 'idempotency-key'?: string } }>('', {
    config: { auth: ['requester'] },
    schema: {
      tags: ['runs'],
      summary: 'Create a migration run; preflight starts automatically',
      description: 'Honours Idempotency-Key: the same key and body return the same run (200); the same key with another body is 422.',
      headers: IdempotencyHeaders,
      body: CreateRunBody,
      response: withProblems({ 200: Type.Ref('Run'), 201: Type.Ref('Run') }, [400, 401, 403, 409, 413, 415, 422, 503]),
    },
  }, async (request, reply) => {
    const { run, created } = await runs.create(request.body, request.principal!, request.headers['idempotency-key']);
    return reply.code(created ? 201 : 200).header('location', `/v1/runs/${run.id}`).send(run);
  });

  app.get<{ Querystring: ListRunsQuery }>('', {
    schema: { tags: ['runs'], summary: 'List runs, newest first', querystring: ListRunsQuery, response: withProblems({ 200: RunList }, [400, 401]) },
  }, async (request) => runs.list(request.query));

  app.get<{ Params: { id: string } }>('/:id', {
    schema: { tags: ['runs'], summary: 'One run', params: RunId, response: withProblems({ 200: Type.Ref('Run') }, [400, 401, 404]) },
  }, async (request) => runs.get(request.params.id));

  app.get<{ Params: { id: string }; Querystring: { format?: 'json' | 'md' } }>('/:id/preflight', {
    schema: {
      tags: ['runs'],
      summary: 'The latest preflight report (404 until one exists); ?format=md for Markdown',
      params: RunId,
      querystring: PreflightQuery,
      response: withProblems({ 200: PreflightReport }, [400, 401, 404]),
    },
  }, async (request, reply) => {
    const run = await runs.get(request.params.id);
    const found = await preflight.report(run.id);
    if (request.query.format === 'md') return reply.type('text/markdown; charset=utf-8').serializer(String).send(renderPreflightMarkdown(run, found.report));
    return found;
  });

  app.post<{ Params: { id: string } }>('/:id/preflight', {
    config: { auth: ['requester', 'operator'] },
    schema: { tags: ['runs'], summary: 'Run preflight again', params: RunId, response: withProblems({ 202: Type.Ref('Run') }, [400, 401, 403, 404, 409]) },
  }, async (request, reply) => {
    await preflight.request(request.params.id, request.principal!);
    return reply.code(202).send(await runs.get(request.params.id));
  });

  app.post<{ Params: { id: string }; Body: ApprovalBody }>('/:id/approvals', {
    config: { auth: ['engineering', 'sre'] },
    schema: {
      tags: ['runs'],
      summary: 'Approve or reject the digest the run carries (engineering or sre; never the requester)',
      params: RunId,
      body: ApprovalBody,
      response: withProblems({ 201: Type.Ref('Run') }, [400, 401, 403, 404, 409, 413, 415]),
    },
  }, async (request, reply) => {
    await approvals.decide(request.params.id, request.principal!, request.body);
    return reply.code(201).send(await runs.get(request.params.id));
  });

  app.post<{ Params: { id: string }; Body: { reason?: string } | null }>('/:id/cancel', {
    config: { auth: ['requester', 'operator'] },
    schema: {
      tags: ['runs'],
      summary: 'Cancel a run before it starts applying (its requester or an operator)',
      params: RunId,
      body: CancelBody,
      response: withProblems({ 200: Type.Ref('Run') }, [400, 401, 403, 404, 409, 413, 415]),
    },
  }, async (request) => runs.cancel(request.params.id, request.principal!, request.body?.reason));

  app.get<{ Params: { id: string } }>('/:id/events', {
    schema: { tags: ['runs'], summary: 'Audit events of the run, oldest first', params: RunId, response: withProblems({ 200: Type.Array(AuditEvent) }, [400, 401, 404]) },
  }, async (request) => {
    await runs.get(request.params.id);
    return app.services.audit.runEvents(request.params.id);
  });

  app.post<{ Params: { id: string }; Body: ApplyBody }>('/:id/apply', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['runs'],
      summary: 'Confirm an approved run: inside a window it applies now; outside, it is scheduled for the next fitting window, or (overrideWindow) an override is asked for',
      description: '`confirm` must equal the environment name; the confirmation is audited (apply.confirmed). Inside an open window (or with none configured) the apply starts now: '
        + 'drift check, pause workers, verified backup, lock-safe migrate, verify, resume. Outside, an approved run becomes scheduled for its next fitting window; '
        + 'with `overrideWindow: true` and a `reason` a window override is asked for instead, which an sre other than the caller approves (POST /v1/runs/:id/overrides/approvals), starting the apply. '
        + 'Drift since approval is refused with 409 and changes nothing.',
      params: RunId,
      body: ApplyBody,
      response: withProblems({ 202: Type.Ref('Run') }, [400, 401, 403, 404, 409, 413, 415, 422, 503]),
    },
  }, async (request, reply) => {
    const outcome = await apply.request(request.params.id, request.principal!, request.body);
    if (outcome.outcome === 'override-requested') reply.header('location', `/v1/runs/${request.params.id}/overrides`);
    return reply.code(202).send(await runs.get(request.params.id));
  });

  app.post<{ Params: { id: string }; Body: ReapplyBody }>('/:id/reapply', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['runs'],
      summary: 'Re-apply an interrupted run: after a fresh drift check, the same pipeline as an apply runs the approved migrations that had not landed',
      description: '`confirm` must equal the environment name; the window rules of an apply hold. Refused with 409 on drift, an open rollback request, or an INVALID index the interrupted attempt left.',
      params: RunId,
      body: ReapplyBody,
      response: withProblems({ 202: Type.Ref('Run') }, [400, 401, 403, 404, 409, 413, 415, 422, 503]),
    },
  }, async (request, reply) => {
    await apply.reapply(request.params.id, request.principal!, request.body);
    return reply.code(202).send(await runs.get(request.params.id));
  });

  app.post<{ Params: { id: string }; Body: CloseBody }>('/:id/close', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['runs'],
      summary: 'Close an interrupted run of which nothing landed (interrupted -> failed), freeing the environment without a restore',
      description: 'Checks the target\'s migrations table and the ledger now; refused with 409 naming what landed when anything did, 503 when the target cannot be read. Lifts the ETL pause the run made.',
      params: RunId,
      body: CloseBody,
      response: withProblems({ 200: Type.Ref('Run') }, [400, 401, 403, 404, 409, 413, 415, 503]),
    },
  }, async (request) => {
    await apply.closeInterrupted(request.params.id, request.principal!, request.body.reason);
    return runs.get(request.params.id);
  });

  app.get<{ Params: { id: string } }>('/:id/logs', {
    schema: {
      tags: ['runs'],
      summary: 'The apply log of the run (text/plain, one line per step)',
      params: RunId,
      response: withProblems({ 200: Type.String() }, [400, 401, 404]),
    },
  }, async (request, reply) => {
    await runs.get(request.params.id);
    return reply.type('text/plain; charset=utf-8').send(await logs.render(request.params.id));
  });

  app.get<{ Params: { id: string }; Querystring: { format?: 'json' | 'md' } }>('/:id/report', {
    schema: {
      tags: ['runs'],
      summary: 'The apply report (backup, workers, migrations, verification) and the latest rollback/restore report; ?format=md for Markdown',
      params: RunId,
      querystring: ReportQuery,
      response: withProblems({ 200: RunReport }, [400, 401, 404]),
    },
  }, async (request, reply) => {
    const run = await runs.get(request.params.id);
    const applied = await apply.report(run.id);
    const rolledBack = await rollback.report(run.id);
    if (!applied && !rolledBack) throw notFound(`Run ${run.id} has no apply or rollback report yet (the apply report exists once verification passed or the apply ended).`);
    const promotion = await app.services.promotion.of(run.id);
    if (request.query.format === 'md') {
      return reply.type('text/markdown; charset=utf-8').serializer(String).send(renderApplyMarkdown(run, applied?.report ?? null, rolledBack) + renderPromotionMarkdown(promotion));
    }
    return { apply: applied, rollback: rolledBack, promotion };
  });

  app.post<{ Params: { id: string }; Body: RollbackBody }>('/:id/rollback', {
    config: { auth: ['operator'] },
    schema: {
      tags: ['runs'],
      summary: 'Ask to undo a run: mode "down" (its down migrations) or "restore" (its backup); an sre other than the caller must approve',
      params: RunId,
      body: RollbackBody,
      response: withProblems({ 202: RollbackRequest }, [400, 401, 403, 404, 409, 413, 415, 422, 503]),
    },
  }, async (request, reply) => reply.code(202).send(await rollback.request(request.params.id, request.principal!, request.body)));

  app.get<{ Params: { id: string } }>('/:id/rollback', {
    schema: { tags: ['runs'], summary: 'Rollback and restore requests of the run', params: RunId, response: withProblems({ 200: Type.Array(RollbackRequest) }, [400, 401, 404]) },
  }, async (request) => rollback.list(request.params.id));

  app.post<{ Params: { id: string }; Body: RollbackDecisionBody }>('/:id/rollback/approvals', {
    config: { auth: ['sre'] },
    schema: {
      tags: ['runs'],
      summary: 'Approve the plan of the open rollback/restore request by its digest (and start it, or hold it for the next window) or reject it (sre, not its requester)',
      description: 'Approving needs `planDigest`, the digest of GET /v1/runs/:id/rollback/plan; 409 (with the new plan) when the plan changed. Outside the windows an approved request '
        + 'waits (scheduled) for the next window unless the requester asked for `overrideWindow`, which this approval co-signs.',
      params: RunId,
      body: RollbackDecisionBody,
      response: withProblems({ 201: RollbackRequest }, [400, 401, 403, 404, 409, 413, 415, 422, 503]),
    },
  }, async (request, reply) => reply.code(201).send(await rollback.decide(request.params.id, request.principal!, request.body)));
}
