// A local HTTP server standing in for Slack and other webhook receivers: it
// records every request and answers as the test tells it to.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
  at: number;
}

/** Decides the answer to a request: a status code, or 'hang' to never answer. */
export type Responder = (req: Received, nth: number) => number | 'hang';

export interface WebhookReceiver {
  base: string;
  received: Received[];
  /** Requests to `path` so far (all answers, successful or not). */
  to(path: string): Received[];
  respond(path: string, responder: Responder): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: Received[] = [];
  const responders = new Map<string, Responder>();
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      let body: unknown = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = Buffer.concat(chunks).toString('utf8');
      }
      const entry = { path, headers: req.headers, body, at: Date.now() };
      received.push(entry);
      const nth = received.filter((r) => r.path === path).length;
      const answer = responders.get(path)?.(entry, nth) ?? 200;
      if (answer === 'hang') {
        hanging.add(res);
        return;
      }
      res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    base: `http://127.0.0.1:${port}`,
    received,
    to: (path) => received.filter((r) => r.path === path),
    respond: (path, responder) => { responders.set(path, responder); },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
