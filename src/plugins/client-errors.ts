import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { problemBody } from './errors.js';
import { MAX_URL_LENGTH } from './input-hygiene.js';

// Requests Node's HTTP parser refuses never reach Fastify's router, hooks or
// error handler: the answer is written straight to the socket. It is the same
// problem+json as every other refusal, and the connection is closed (the
// parser cannot find where the next request would start).

interface ParserError extends Error {
  code?: string;
  /** The bytes being parsed when the parser gave up (a Buffer at run time). */
  rawPacket?: unknown;
}

// Overflow in a packet that starts with a request line whose end is beyond
// MAX_URL_LENGTH: the URL alone is too long (414). When the request arrived in
// several packets the parser hands over only the last one, and the two cannot
// be told apart: 431.
const REQUEST_LINE_START = /^[A-Z]+ /;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;

/** The (well-formed) name of the first header line whose value holds a control byte, from the bytes the parser refused. */
function headerWithControl(rawPacket: unknown): string | null {
  if (!Buffer.isBuffer(rawPacket)) return null;
  for (const line of rawPacket.toString('latin1').split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    if (HEADER_NAME.test(name) && /[\0-\x08\x0A-\x1F\x7F]/.test(line.slice(colon + 1))) return name.toLowerCase();
  }
  return null;
}

interface Refusal {
  status: number;
  detail: string;
  extra?: Record<string, unknown>;
  slug?: string;
}

function classify(err: ParserError): Refusal {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, detail: 'The request was not received in time; the connection is closed.' };
    case 'HPE_HEADER_OVERFLOW': {
      const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket : null;
      const eol = raw ? raw.indexOf('\r\n') : -1;
      if (raw && REQUEST_LINE_START.test(raw.subarray(0, 64).toString('latin1')) && (eol < 0 || eol > MAX_URL_LENGTH)) {
        return { status: 414, detail: 'The request URL is longer than the server accepts.' };
      }
      return { status: 431, detail: 'The request line and headers are larger than the server accepts (16 KiB).' };
    }
    case 'HPE_INVALID_METHOD':
      return { status: 400, detail: 'The request does not start with a known HTTP method.' };
    case 'HPE_INVALID_URL':
      return { status: 400, detail: 'The request URL contains a character that is not allowed (control characters and spaces must be percent-encoded).' };
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CHARACTER': {
      const name = headerWithControl(err.rawPacket);
      const message = 'contains a character that is not allowed (NUL or a control character other than tab)';
      if (!name) return { status: 400, detail: `A request header ${message}.` };
      return { status: 400, detail: `Invalid headers: headers/${name} ${message}`, extra: { errors: [{ path: `headers/${name}`, message }] }, slug: 'validation-error' };
    }
    case 'HPE_INVALID_VERSION':
      return { status: 400, detail: 'The request is not HTTP/1.0 or HTTP/1.1.' };
    default:
      return { status: 400, detail: 'The request is not well-formed HTTP.' };
  }
}

/** Fastify's clientErrorHandler: answers a request Node's parser refused with problem+json, then closes the connection. */
export function clientErrorHandler(this: FastifyInstance, err: ParserError, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, detail, extra, slug } = classify(err);
  this.log.debug({ code: err.code, status }, 'refused a malformed request');
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(problemBody(status, detail, extra, slug));
  const title = problemBody(status, '').title;
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
