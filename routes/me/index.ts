import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { capabilitiesOf } from '../../services/me/capabilities.js';
import { RollbackRequest } from '../runs/schemas.js';
import { withProblems } from '../schemas.js';

const ApproverRole = Type.Union([Type.Literal('engineering'), Type.Literal('sre')]);

const Me = Type.Object({
  subject: Type.String(),
  roles: Type.Array(Type.String()),
  can: Type.Object({
    createRun: Type.Boolean(),
    approveAs: Type.Array(ApproverRole, { description: 'Roles the caller may approve or reject a run as (never their own run)' }),
    acknowledgeFindings: Type.Boolean({ description: 'Acknowledge preflight findings (never of their own run)' }),
    manageOwnRuns: Type.Boolean({ description: 'Cancel or re-run the preflight of their own runs' }),
    manageAnyRun: Type.Boolean({ description: 'Cancel or re-run the preflight of any run' }),
    apply: Type.Boolean(),
    applyOutsideWindow: Type.Boolean({ description: 'Apply outside a maintenance window (operator and sre)' }),
    requestRollback: Type.Boolean(),
    approveRollback: Type.Boolean({ description: 'Decide rollback/restore requests of others' }),
    controlEtl: Type.Boolean(),
    controlBackfills: Type.Boolean(),
  }, { description: 'What the roles allow; the server still decides each request' }),
});

const Waiting = Type.Object({
  approvals: Type.Array(Type.Object({ run: Type.Ref('Run'), asRoles: Type.Array(ApproverRole) })),
  rollbacks: Type.Array(Type.Object({ run: Type.Ref('Run'), request: RollbackRequest })),
});

export async function meRoutes(app: FastifyInstance): Promise<void> {
  app.get('', {
    schema: { tags: ['me'], summary: 'Who the bearer token belongs to, its roles and what they allow', response: withProblems({ 200: Me }, [401]) },
  }, async (request) => ({ subject: request.principal!.subject, roles: request.principal!.roles, can: capabilitiesOf(request.principal!) }));

  app.get('/waiting', {
    schema: {
      tags: ['me'],
      summary: 'What waits for the caller: runs it may approve and rollback/restore requests it may decide',
      response: withProblems({ 200: Waiting }, [401]),
    },
  }, async (request) => app.services.waiting.waitingFor(request.principal!));
}
