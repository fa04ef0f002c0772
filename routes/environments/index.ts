import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { withProblems } from '../schemas.js';

const Environment = Type.Object({
  name: Type.String(),
  databaseUrlEnv: Type.String({ description: 'The environment variable holding the URL (the URL itself is never shown)' }),
  configured: Type.Boolean(),
  reachable: Type.Boolean(),
  error: Type.Union([Type.String(), Type.Null()]),
  migrationsTable: Type.String(),
  applied: Type.Array(Type.Object({ name: Type.String(), runOn: Type.String() })),
  pending: Type.Array(Type.Object({ name: Type.String(), sha256: Type.String() })),
  requiredApprovals: Type.Array(Type.String()),
  activeRun: Type.Union([Type.Object({ id: Type.String(), status: Type.String() }), Type.Null()]),
  windows: Type.Array(Type.Object({ cron: Type.String(), durationMinutes: Type.Integer(), timezone: Type.String() })),
  freezes: Type.Array(Type.Object({ from: Type.String(), to: Type.String(), reason: Type.String() })),
  activeFreeze: Type.Union([Type.Object({ from: Type.String(), to: Type.String(), reason: Type.String() }), Type.Null()]),
});

export async function environmentRoutes(app: FastifyInstance): Promise<void> {
  app.get('', {
    schema: {
      tags: ['environments'],
      summary: 'Per environment: applied and pending migrations, approval policy, active run, windows, freezes',
      response: withProblems({ 200: Type.Array(Environment) }, [401]),
    },
  }, async () => app.services.environments.list());
}
