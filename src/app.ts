import { randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import fp from 'fastify-plugin';
import { stdSerializers } from 'pino';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { scrubSecrets } from '../database/pg-errors.js';
import type { AppConfig } from './config/index.js';
import { authPlugin } from './plugins/auth.js';
import { clientErrorHandler } from './plugins/client-errors.js';
import { errorsPlugin, frameworkError } from './plugins/errors.js';
import { inputHygienePlugin } from './plugins/input-hygiene.js';
import { ProbeQuietLogController } from './plugins/request-logging.js';
import { servicesPlugin } from './plugins/services.js';
import { metricsPlugin } from './plugins/metrics.js';
import { etlRoutes } from '../routes/etl/index.js';
import { backfillRoutes } from '../routes/backfills/index.js';
import { BackfillJob } from '../routes/backfills/schemas.js';
import { swaggerPlugin } from './plugins/swagger.js';
import { environmentRoutes } from '../routes/environments/index.js';
import { healthRoutes } from '../routes/health/index.js';
import { runRoutes } from '../routes/runs/index.js';
import { eventRoutes } from '../routes/events/index.js';
import { meRoutes } from '../routes/me/index.js';
import { consolePlugin } from './plugins/console.js';
import { Run } from '../routes/runs/schemas.js';
import { RollbackPlan } from '../routes/runs/policy-schemas.js';
import { Problem } from '../routes/schemas.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

// Secrets never reach a log line, whatever object a caller logs.
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.token',
  '*.databaseUrl',
  '*.connectionString',
];

function makeAjv(coerceTypes: boolean | 'array') {
  // Unknown body fields are an error, not silently dropped; body types are never coerced.
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes, allErrors: false, strict: false });
  addFormats.default(ajv);
  return ajv;
}

/** Logged errors keep their shape but lose any connection string in message or stack. */
function errSerializer(err: Error) {
  const out = stdSerializers.err(err);
  out.message = scrubSecrets(out.message ?? '', []);
  if (out.stack) out.stack = scrubSecrets(out.stack, []);
  return out;
}

export interface BuildOptions {
  /** false turns logging off (e.g. the OpenAPI generator); default on at config.logLevel. */
  logger?: boolean;
  /** Where log lines go (default stdout); tests capture them to check redaction. */
  logStream?: { write(line: string): void };
}

export function fastifyOptions(config: Pick<AppConfig, 'logLevel'>, opts: BuildOptions = {}): FastifyServerOptions {
  return {
    logger: opts.logger === false
      ? false
      : {
          level: config.logLevel,
          redact: { paths: REDACT_PATHS, censor: '[redacted]' },
          serializers: { err: errSerializer },
          ...(opts.logStream ? { stream: opts.logStream } : {}),
        },
    // /healthz, /readyz and /metrics request lines at debug, not info.
    logController: new ProbeQuietLogController(),
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    },
    // Errors raised by the router itself (a URL too long or badly encoded) get
    // the same problem+json body as every other error.
    frameworkErrors: frameworkError,
    // Requests Node's parser refuses (431, 414, 408, malformed) get problem+json too.
    clientErrorHandler,
    requestTimeout: 60_000,
    connectionTimeout: 60_000,
    // input-hygiene.ts answers 503 while closing, as problem+json (Fastify's own is plain JSON).
    return503OnClosing: false,
  };
}

/** The whole service as a Fastify plugin; server.ts and the tests build it the same way. */
async function starforge(fastify: FastifyInstance, opts: { config: AppConfig }): Promise<void> {
  const bodyAjv = makeAjv(false);
  const paramsAjv = makeAjv('array');
  fastify.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodyAjv.compile(schema) : paramsAjv.compile(schema),
  );
  // Request bodies are JSON only: Fastify's default text/plain parser would hand
  // a string to schema validation and turn a wrong media type into a 400, not 415.
  fastify.removeContentTypeParser('text/plain');
  // Callback style: an async hook costs every response a promise and a microtask.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
  // Shared schemas live on this instance only: an addSchema() inside a route
  // plugin makes Fastify fall back to its default (coercing) validator there.
  fastify.addSchema(Problem);
  fastify.addSchema(Run);
  fastify.addSchema(RollbackPlan);
  fastify.addSchema(BackfillJob);
  await fastify.register(errorsPlugin);
  await fastify.register(inputHygienePlugin);
  await fastify.register(swaggerPlugin);
  await fastify.register(authPlugin, { tokens: opts.config.authTokens });
  await fastify.register(servicesPlugin, { config: opts.config });
  await fastify.register(metricsPlugin, { metricsToken: opts.config.metricsToken });
  await fastify.register(healthRoutes);
  await fastify.register(runRoutes, { prefix: '/v1/runs' });
  await fastify.register(environmentRoutes, { prefix: '/v1/environments' });
  await fastify.register(etlRoutes, { prefix: '/v1/etl' });
  await fastify.register(backfillRoutes, { prefix: '/v1/backfills' });
  await fastify.register(eventRoutes, { prefix: '/v1/events' });
  await fastify.register(meRoutes, { prefix: '/v1/me' });
  await fastify.register(consolePlugin);
}

// Not encapsulated, so the server and tests can reach app.services.
export const app = fp(starforge, { name: 'starforge' });

export async function buildApp(config: AppConfig, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const fastify = Fastify(fastifyOptions(config, opts));
  await fastify.register(app, { config });
  await fastify.ready();
  return fastify;
}
