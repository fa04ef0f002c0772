// A TCP proxy in front of a real PostgreSQL server that a test can cut: every
// open connection is reset and new ones are refused (the listening socket is
// closed), exactly what the service sees when a target host goes away. A cut
// can be armed to fire when a given query (or startup packet) passes through,
// before those bytes reach the server, so "the target disappears the moment
// verification starts" is deterministic rather than a race against a timer.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from '../support/net.js';

export interface FaultProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  route(url: string): string;
  /** Resets every connection and refuses new ones until restore(). */
  cut(): Promise<void>;
  /** Cuts when bytes matching `pattern` go from a client to the server (those bytes are never forwarded). */
  cutWhen(pattern: RegExp): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  /** Connections the proxy accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

export async function startFaultProxy(upstreamUrl: string): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl);
  const upstreamHost = upstream.hostname;
  const upstreamPort = Number(upstream.port || 5432);
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let armed: { pattern: RegExp; fired: () => void } | null = null;
  let accepted = 0;

  const destroyAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };

  async function cut(): Promise<void> {
    const s = server;
    server = null;
    destroyAll();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  function onConnection(client: Socket): void {
    accepted++;
    const server = connect(upstreamPort, upstreamHost);
    sockets.add(client);
    sockets.add(server);
    // The tail of what this client sent, so a pattern split across two chunks still matches.
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      if (armed) {
        const text = tail + chunk.toString('latin1');
        tail = text.slice(-4096);
        if (armed.pattern.test(text)) {
          const { fired } = armed;
          armed = null;
          void cut().then(fired);
          return;
        }
      }
      server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => client.write(chunk));
    const drop = () => {
      client.destroy();
      server.destroy();
      sockets.delete(client);
      sockets.delete(server);
    };
    client.on('close', drop);
    server.on('close', drop);
    client.on('error', drop);
    server.on('error', drop);
  }

  async function listen(): Promise<void> {
    const s = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    server = s;
  }

  await listen();
  return {
    port,
    route(url: string) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut,
    cutWhen(pattern: RegExp) {
      return new Promise<void>((resolve) => {
        armed = { pattern, fired: resolve };
      });
    },
    async restore() {
      armed = null;
      if (!server) await listen();
    },
    get accepted() {
      return accepted;
    },
    async close() {
      armed = null;
      await cut();
    },
  };
}
