// The image's HEALTHCHECK: exit 0 when this container's service answers
// GET /healthz within 3 s, else 1. Node itself, so the image needs no curl.
const port = process.env.PORT?.trim() || '3000';
const host = process.env.HOST?.trim();
// Bound to every interface (the image's 0.0.0.0): ask over loopback.
const target = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}/healthz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  process.exitCode = res.ok ? 0 : 1;
  if (!res.ok) process.stderr.write(`healthcheck: ${url} answered ${res.status}\n`);
} catch (err) {
  process.stderr.write(`healthcheck: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
