import type { FastifyInstance } from 'fastify';
import { withProblems } from '../schemas.js';
import { RollbackPlan, RollbackPlanQuery } from './policy-schemas.js';
import { RunId } from './schemas.js';

export async function rollbackPlanRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Params: { id: string }; Querystring: RollbackPlanQuery }>('/:id/rollback/plan', {
    schema: {
      tags: ['runs'],
      summary: 'What a rollback (down) or restore of the run would do, read now from the rehearsal, the backup and the target',
      description: 'down: each down migration\'s SQL (captured in the preflight rehearsal), which are reversible, and the tables/columns it drops with exact bounded row counts and sizes. '
        + 'restore: the backup\'s age, the writes since it (pg_stat_user_tables deltas) that would be lost, and the tables it would drop. An approval names the plan\'s digest.',
      params: RunId,
      querystring: RollbackPlanQuery,
      response: withProblems({ 200: RollbackPlan }, [400, 401, 404, 409, 422, 503]),
    },
  }, async (request) => app.services.rollbackPlans.plan(request.params.id, request.query.mode));
}
