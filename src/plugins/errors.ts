import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { describeConnectionError, isConnectionError } from '../../database/pg-errors.js';
import { ServiceError } from '../../services/errors.js';
import { explainEnums } from './validation-messages.js';

export const PROBLEM_BASE = 'https://starforge.dev/problems/';
const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Content', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};
const SLUGS: Record<number, string> = {
  400: 'bad-request', 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 405: 'method-not-allowed',
  409: 'conflict', 413: 'payload-too-large', 415: 'unsupported-media-type', 422: 'unprocessable', 503: 'unavailable',
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

export function sendProblem(reply: FastifyReply, status: number, detail: string, extra: Record<string, unknown> = {}, slug?: string): FastifyReply {
  const problem: Problem = {
    type: PROBLEM_BASE + (slug ?? SLUGS[status] ?? 'error'),
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    instance: reply.request.url.split('?')[0],
    ...extra,
  };
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
    app.setNotFoundHandler((request, reply) => sendProblem(reply, 404, `No route ${request.method} ${request.url.split('?')[0]}`));
  },
  { name: 'errors' },
);
