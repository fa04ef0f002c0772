import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { withProblems } from '../schemas.js';

const WindowSpan = Type.Object({ start: Type.String({ format: 'date-time' }), end: Type.String({ format: 'date-time' }) });

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
  applyMode: Type.String({ enum: ['confirm', 'auto'], description: 'confirm: an approved run waits for an operator\'s POST /v1/runs/:id/apply; auto: approval schedules it' }),
  requires: Type.Union([Type.Object({ environment: Type.String() }), Type.Null()], { description: 'Promotion: a run here is approvable once a run of the same digest succeeded in this environment' }),
  activeRun: Type.Union([Type.Object({ id: Type.String(), status: Type.String() }), Type.Null()]),
  windows: Type.Array(Type.Object({ cron: Type.String(), durationMinutes: Type.Integer(), timezone: Type.String() })),
  freezes: Type.Array(Type.Object({ from: Type.String(), to: Type.String(), reason: Type.String() })),
  activeFreeze: Type.Union([Type.Object({ from: Type.String(), to: Type.String(), reason: Type.String() }), Type.Null()]),
  windowOpen: Type.Boolean({ description: 'An apply may start now by the window policy (no windows configured: any time outside a freeze)' }),
  currentWindow: Type.Union([WindowSpan, Type.Null()], { description: 'The window open now (freezes cut out), if any' }),
  nextWindow: Type.Union([WindowSpan, Type.Null()], { description: 'The next window to open after now; null without windows' }),
});

const WindowsParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 40 }) });
const WindowsQuery = Type.Object(
  { count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'How many windows (1 to 100)' })) },
  { additionalProperties: false },
);

export async function environmentRoutes(app: FastifyInstance): Promise<void> {
  app.get('', {
    schema: {
      tags: ['environments'],
      summary: 'Per environment: applied and pending migrations, approval policy, active run, windows, freezes',
      response: withProblems({ 200: Type.Array(Environment) }, [401]),
    },
  }, async () => app.services.environments.list());

  app.get<{ Params: { name: string }; Querystring: { count?: number } }>('/:name/windows', {
    schema: {
      tags: ['environments'],
      summary: 'The next maintenance windows {start, end} (ISO 8601), freezes cut out; the first may be open now',
      description: 'An environment without windows may be applied at any time outside its freezes: its list is empty.',
      params: WindowsParams,
      querystring: WindowsQuery,
      response: withProblems({ 200: Type.Array(WindowSpan) }, [400, 401, 404]),
    },
  }, async (request) => app.services.environments.windows(request.params.name, request.query.count ?? 5));
}
