import { isUtf8 } from 'node:buffer';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ServiceError } from '../../services/errors.js';
import { sendProblem } from './errors.js';
import { jsonPathAt } from './json-position.js';
import { findBadQuery, findBadText, utf8Problem, type TextFault } from './text-rules.js';

/** Longer URLs get 414 (nginx's default is 8 KiB too); Node's parser caps request line + headers at 16 KiB. */
export const MAX_URL_LENGTH = 8192;

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)"?/i;

/** 400 naming the field whose bytes are not UTF-8 (the text before them is, so it can be followed). */
function invalidUtf8(bytes: Buffer): ServiceError {
  const fault = utf8Problem(bytes) ?? { offset: 0, reason: 'a malformed sequence' };
  const before = bytes.subarray(0, fault.offset).toString('utf8');
  const { path, inName } = jsonPathAt(before, before.length);
  const message = `${inName ? 'has a field name that is' : 'is'} not valid UTF-8 (byte ${fault.offset} of the body: ${fault.reason})`;
  return new ServiceError(400, 'validation-error', `Invalid body: ${path} ${message}`, { errors: [{ path, message }] });
}

function textFault(fault: TextFault): ServiceError {
  const where = fault.path.split('/')[0];
  return new ServiceError(400, 'validation-error', `Invalid ${where}: ${fault.path} ${fault.message}`, { errors: [fault] });
}

/** Headers the route reads as text are the ones its schema declares (Idempotency-Key); the rest are Node's to police. */
function declaredHeaders(request: FastifyRequest): Record<string, unknown> | null {
  const schema = request.routeOptions.schema?.headers as { properties?: Record<string, unknown> } | undefined;
  if (!schema?.properties) return null;
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(schema.properties)) {
    const value = request.headers[name.toLowerCase()];
    if (value !== undefined) out[name.toLowerCase()] = value;
  }
  return out;
}

function findBadInput(request: FastifyRequest): TextFault | null {
  const q = request.url.indexOf('?');
  return findBadText(request.params, 'params')
    ?? findBadText(request.body, 'body')
    ?? (q < 0 ? null : findBadQuery(request.url.slice(q + 1)))
    ?? findBadText(declaredHeaders(request), 'headers');
}

/**
 * One place that keeps malformed text out of every route, whatever its
 * schema says: JSON bodies must be well-formed UTF-8; no parameter, query
 * value, declared header or body string (or field name) may carry NUL, a lone
 * surrogate or a control character other than tab/LF/CR (see text-rules.ts).
 * Also: URLs over MAX_URL_LENGTH get 414, and requests that arrive while the
 * server closes get a problem+json 503 (Fastify's own is plain JSON).
 */
export const inputHygienePlugin = fp(
  async (app: FastifyInstance) => {
    let closing = false;
    app.addHook('preClose', (done) => {
      closing = true;
      done();
    });
    app.addHook('onRequest', (request, reply, done) => {
      if (closing) {
        reply.header('connection', 'close');
        sendProblem(reply, 503, 'This instance is shutting down; retry (another replica will answer).');
        return;
      }
      if (request.url.length > MAX_URL_LENGTH) {
        sendProblem(reply, 414, `The request URL is ${request.url.length} characters long; at most ${MAX_URL_LENGTH} are accepted.`);
        return;
      }
      done();
    });

    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      const charset = CHARSET.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
      if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
        done(new ServiceError(415, 'unsupported-media-type', `JSON bodies are UTF-8 (RFC 8259); charset=${charset} is not accepted.`), undefined);
        return;
      }
      const bytes = body as Buffer;
      if (!isUtf8(bytes)) {
        done(invalidUtf8(bytes), undefined);
        return;
      }
      parseJson(request, bytes.toString('utf8'), done);
    });

    app.addHook('preValidation', (request, _reply, done) => {
      const fault = findBadInput(request);
      if (fault) done(textFault(fault) as unknown as FastifyError);
      else done();
    });
  },
  { name: 'input-hygiene', dependencies: ['errors'] },
);
