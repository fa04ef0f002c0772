// HTTP/1.1 over a plain TCP socket, byte for byte: for requests no HTTP client
// will send (invalid UTF-8, NUL in a header, a 20 KiB URL) and for answers
// written by Node's parser before Fastify sees the request.
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The body parsed as JSON (throws when it is not). */
  json(): Record<string, unknown>;
}

export interface RawRequest {
  method: string;
  /** The request target exactly as sent (already percent-encoded). */
  path: string;
  headers?: Record<string, string | Buffer>;
  body?: string | Buffer;
}

/** The bytes of one request; Connection: close so the answer ends with the socket. */
export function requestBytes(req: RawRequest): Buffer {
  const parts: Buffer[] = [Buffer.from(`${req.method} ${req.path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`, 'latin1')];
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    parts.push(Buffer.from(`${name}: `, 'latin1'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1'), Buffer.from('\r\n'));
  }
  const body = req.body === undefined ? null : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
  if (body) parts.push(Buffer.from(`Content-Length: ${body.length}\r\n`));
  parts.push(Buffer.from('\r\n'));
  if (body) parts.push(body);
  return Buffer.concat(parts);
}

function parse(bytes: Buffer): RawResponse {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete response head in ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`);
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = bytes.subarray(end + 4);
  if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  const text = body.toString('utf8');
  return { status, headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** Sends `data` (in one write, or in `chunks`) and reads the answer until the server closes the connection. */
export function rawExchange(port: number, data: Buffer | string, opts: { chunks?: Array<Buffer | string>; endAfterMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('error', (err) => (received.length > 0 ? resolve(parse(Buffer.concat(received))) : reject(err)));
    socket.on('close', () => {
      try {
        resolve(parse(Buffer.concat(received)));
      } catch (err) {
        reject(err);
      }
    });
    socket.write(data);
    for (const chunk of opts.chunks ?? []) socket.write(chunk);
    // A safety net only: the server is expected to close first.
    const timer = setTimeout(() => socket.destroy(), opts.endAfterMs ?? 10_000);
    socket.on('close', () => clearTimeout(timer));
  });
}

/** Listens on a free 127.0.0.1 port (once) and returns it. */
export async function listeningPort(app: FastifyInstance): Promise<number> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as { port: number }).port;
}
