import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export const swaggerPlugin = fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      // Name shared schemas by their $id (Run, Problem) rather than def-N.
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'StarForge Migration Service',
          version: 'v1',
          description: 'Safe PostgreSQL schema migrations: preflight, approvals, windows, verified backups, lock-safe apply, audit trail.',
        },
        components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
        security: [{ bearerAuth: [] }],
        tags: [
          { name: 'health', description: 'Liveness and readiness' },
          { name: 'runs', description: 'Migration runs and their lifecycle' },
          { name: 'environments', description: 'Target environments' },
          { name: 'etl', description: 'ETL health and the workers\' pause flag' },
          { name: 'backfills', description: 'Resumable, throttled data backfills (add -> backfill -> enforce)' },
          { name: 'metrics', description: 'Prometheus metrics' },
          { name: 'events', description: 'Live audit events (server-sent events)' },
          { name: 'me', description: 'The caller: roles, what they allow, what waits for them' },
        ],
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  },
  { name: 'swagger' },
);
