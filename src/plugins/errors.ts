import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { describeConnectionError, isConnectionError } from '../../database/pg-errors.js';
import { ServiceError } from '../../services/errors.js';
import { RouteTable } from './route-table.js';

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: RouteTable;
  }
}
import { explainEnums } from './validation-messages.js';

export const PROBLEM_BASE = 'https://starforge.dev/problems/';
const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 414: 'URI Too Long',
  415: 'Unsupported Media Type', 422: 'Unprocessable Content', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 503: 'Service Unavailable',
};
const SLUGS: Record<number, string> = {
  400: 'bad-request', 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 405: 'method-not-allowed', 408: 'request-timeout',
  409: 'conflict', 413: 'payload-too-large', 414: 'uri-too-long', 415: 'unsupported-media-type', 422: 'unprocessable',
  431: 'header-fields-too-large', 503: 'unavailable',
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: Array<{ path: string; message: string }>;
  [extra: string]: unknown;
}

/** The RFC 9457 body for `status`; also written raw to sockets the router never saw (client-errors.ts). */
export function problemBody(status: number, detail: string, extra: Record<string, unknown> = {}, slug?: string): Problem {
  return { type: PROBLEM_BASE + (slug ?? SLUGS[status] ?? 'error'), title: TITLES[status] ?? 'Error', status, detail, ...extra };
}

export function sendProblem(reply: FastifyReply, status: number, detail: string, extra: Record<string, unknown> = {}, slug?: string): FastifyReply {
  const problem = problemBody(status, detail, { instance: reply.request.url.split('?')[0], ...extra }, slug);
  return reply.code(status).type('application/problem+json').send(problem);
}

function validationErrors(err: FastifyError): Array<{ path: string; message: string }> {
  const where = err.validationContext ?? 'request';
  return explainEnums(err.validation ?? []).map((v) => {
    const missing = v.keyword === 'required' ? `/${String((v.params as { missingProperty?: string }).missingProperty)}` : '';
    const extra = v.keyword === 'additionalProperties' ? `/${String((v.params as { additionalProperty?: string }).additionalProperty)}` : '';
    const message = v.keyword === 'additionalProperties' ? 'is not a known field' : (v.message ?? 'is invalid');
    return { path: `${where}${v.instancePath}${missing}${extra}`, message };
  });
}

/**
 * Fastify's frameworkErrors: errors the router raises before any route runs
 * (a badly encoded URL, a failed constraint) get the same problem+json body;
 * a path parameter that does not decode is named like a validation error.
 */
export function frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  const param = error.code === 'FST_ERR_BAD_URL' ? request.server.routeTable?.undecodableParam(request.url.split('?')[0]!) : null;
  if (param) {
    const fault = { path: `params/${param}`, message: 'is not valid percent-encoded UTF-8 (overlong, surrogate or truncated sequence)' };
    void sendProblem(reply, 400, `Invalid params: ${fault.path} ${fault.message}`, { errors: [fault] }, 'validation-error');
    return;
  }
  void sendProblem(reply, status, error.message);
}

/** Every error leaves as application/problem+json (RFC 9457); 5xx bodies hide internals. */
export const errorsPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((err: FastifyError | ServiceError, request, reply) => {
      if (err instanceof ServiceError) {
        return sendProblem(reply, err.statusCode, err.message, err.extra, err.problem);
      }
      if (err.validation) {
        const errors = validationErrors(err);
        return sendProblem(reply, 400, `Invalid ${err.validationContext ?? 'request'}: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`, { errors }, 'validation-error');
      }
      if (isConnectionError(err)) {
        request.log.warn({ reason: describeConnectionError(err) }, 'control database unavailable');
        return sendProblem(reply, 503, `The control database is unavailable (${describeConnectionError(err)}); retry shortly.`, { requestId: request.id });
      }
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
      if (status >= 500) {
        request.log.error({ err }, 'request failed');
        return sendProblem(reply, status, `${TITLES[status] ?? 'Server Error'} (request id ${request.id})`, { requestId: request.id });
      }
      // Fastify's own 4xx errors (bad JSON, body too large, media type) have safe messages.
      return sendProblem(reply, status, err.message);
    });
    const routes = new RouteTable();
    app.decorate('routeTable', routes);
    app.addHook('onRoute', (route) => routes.add(route.url, route.method));
    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0]!;
      const methods = routes.methodsAt(path);
      if (methods.length > 0) {
        reply.header('allow', methods.join(', '));
        return sendProblem(reply, 405, `${request.method} is not served at ${path}; allowed: ${methods.join(', ')}.`);
      }
      return sendProblem(reply, 404, `No route ${request.method} ${path}`);
    });
  },
  { name: 'errors' },
);
