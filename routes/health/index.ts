import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', {
    config: { auth: 'public' },
    schema: { tags: ['health'], summary: 'Liveness', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    config: { auth: 'public' },
    schema: {
      tags: ['health'],
      summary: 'Readiness: 200 when the control database answers, else 503',
      security: [],
      response: {
        200: Type.Object({ status: Type.Literal('ready') }),
        503: Type.Object({ status: Type.Literal('unavailable'), detail: Type.String() }),
      },
    },
  }, async (_request, reply) => {
    const problem = await app.services.health.controlDatabase();
    if (problem) return reply.code(503).send({ status: 'unavailable' as const, detail: problem });
    return { status: 'ready' as const };
  });
}
