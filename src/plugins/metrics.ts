import { createHash, timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { sendProblem } from './errors.js';

/** The route label of requests no route matched: raw URLs would make one series per scanner probe. */
export const UNMATCHED_ROUTE = 'unmatched';

/** The route pattern (/v1/runs/:id), never the URL with its ids. */
export function routeLabel(request: FastifyRequest): string {
  const url = request.routeOptions.url;
  return url === undefined || url === '' || request.is404 ? UNMATCHED_ROUTE : url;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * GET /metrics (Prometheus text format) and the HTTP request histogram.
 * Public unless METRICS_TOKEN is set; then only that bearer token may
 * scrape (the API's own tokens do not: a scraper needs no API role).
 */
export const metricsPlugin = fp(
  async (app: FastifyInstance, opts: { metricsToken: string | undefined }) => {
    const { metrics } = app.services;
    const expected = opts.metricsToken === undefined ? null : digest(opts.metricsToken);

    // Callback style: an async hook costs every response a promise and a microtask.
    app.addHook('onResponse', (request, reply, done) => {
      metrics.httpDuration.observe(
        { method: request.method, route: routeLabel(request), status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
      done();
    });

    app.get('/metrics', {
      config: { auth: 'public' },
      schema: {
        tags: ['metrics'],
        summary: 'Prometheus metrics (text format); needs `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set',
        description: 'Database-backed figures are cached for 5 s and time-boxed (1 s per database): a slow or unreachable database shows as starforge_target_up / starforge_control_up 0, never as a slow or failed scrape.',
        security: [],
        response: { 200: Type.String({ description: 'Prometheus text exposition format 0.0.4' }), 401: Type.Ref('Problem') },
      },
      onRequest: async (request, reply) => {
        if (!expected) return;
        const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
        // Compare digests: equal length, constant time, whatever the caller sent.
        if (match && timingSafeEqual(digest(match[1]!), expected)) return;
        reply.header('www-authenticate', 'Bearer realm="starforge-metrics"');
        return sendProblem(reply, 401, 'Scraping /metrics needs Authorization: Bearer <METRICS_TOKEN>.');
      },
    }, async (_request, reply) => {
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    });
  },
  { name: 'metrics', dependencies: ['services', 'errors', 'auth'] },
);
