// The router answers an unknown method on a known path with 404; HTTP says
// 405 with an Allow header (RFC 9110 15.5.6), which tells a caller that the
// path is right and the verb is wrong.

interface RoutePattern {
  matches: RegExp;
  methods: Set<string>;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A find-my-way path ("/v1/runs/:id/approvals", "/docs/*") as a regular expression over request paths. */
function toRegExp(url: string): RegExp {
  const parts = url.split('/').map((segment) => {
    if (segment === '*') return '.*';
    if (segment.startsWith(':')) return '[^/]+';
    return escape(segment);
  });
  return new RegExp(`^${parts.join('/')}$`);
}

export class AllowedMethods {
  private readonly routes = new Map<string, RoutePattern>();

  add(url: string, method: string | string[]): void {
    let route = this.routes.get(url);
    if (!route) {
      route = { matches: toRegExp(url), methods: new Set() };
      this.routes.set(url, route);
    }
    for (const m of Array.isArray(method) ? method : [method]) route.methods.add(m.toUpperCase());
  }

  /** The methods some route serves at `path` (sorted), empty when no route has that path. */
  at(path: string): string[] {
    const out = new Set<string>();
    for (const route of this.routes.values()) {
      if (route.matches.test(path)) for (const m of route.methods) out.add(m);
    }
    return [...out].sort();
  }
}
