import { randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AppConfig } from './config/index.js';
import { authPlugin } from './plugins/auth.js';
import { errorsPlugin } from './plugins/errors.js';
import { servicesPlugin } from './plugins/services.js';
import { swaggerPlugin } from './plugins/swagger.js';
import { environmentRoutes } from '../routes/environments/index.js';
import { healthRoutes } from '../routes/health/index.js';
import { runRoutes } from '../routes/runs/index.js';
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
  '*.url',
];

function makeAjv(coerceTypes: boolean | 'array') {
  // Unknown body fields are an error, not silently dropped; body types are never coerced.
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes, allErrors: false, strict: false });
  addFormats.default(ajv);
  return ajv;
}

export function fastifyOptions(config: Pick<AppConfig, 'logLevel'>, logger: FastifyServerOptions['logger'] | boolean = true): FastifyServerOptions {
  return {
    logger: logger === true ? { level: config.logLevel, redact: { paths: REDACT_PATHS, censor: '[redacted]' } } : logger,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    },
    requestTimeout: 60_000,
    connectionTimeout: 60_000,
    return503OnClosing: true,
  };
}

/** The whole service as a Fastify plugin; server.ts and the tests build it the same way. */
export async function app(fastify: FastifyInstance, opts: { config: AppConfig }): Promise<void> {
  const bodyAjv = makeAjv(false);
  const paramsAjv = makeAjv('array');
  fastify.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodyAjv.compile(schema) : paramsAjv.compile(schema),
  );
  fastify.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  fastify.addSchema(Problem);
  await fastify.register(errorsPlugin);
  await fastify.register(swaggerPlugin);
  await fastify.register(authPlugin, { tokens: opts.config.authTokens });
  await fastify.register(servicesPlugin, { config: opts.config });
  await fastify.register(healthRoutes);
  await fastify.register(runRoutes, { prefix: '/v1/runs' });
  await fastify.register(environmentRoutes, { prefix: '/v1/environments' });
}

export async function buildApp(config: AppConfig, logger: FastifyServerOptions['logger'] | boolean = true): Promise<FastifyInstance> {
  const fastify = Fastify(fastifyOptions(config, logger));
  await fastify.register(app, { config });
  await fastify.ready();
  return fastify;
}
