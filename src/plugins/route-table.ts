// The routes' path patterns, for the answers the router cannot give itself:
// an unknown method on a known path is 405 with an Allow header (RFC 9110
// 15.5.6), not 404; a path parameter that is not valid percent-encoded UTF-8
// is named like a validation error, not "not a valid url component".

interface RoutePattern {
  matches: RegExp;
  params: string[];
  methods: Set<string>;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A find-my-way path ("/v1/runs/:id/approvals", "/docs/*") as a regular expression over raw request paths. */
function compile(url: string): Pick<RoutePattern, 'matches' | 'params'> {
  const params: string[] = [];
  const parts = url.split('/').map((segment) => {
    if (segment === '*') return '.*';
    if (segment.startsWith(':')) {
      params.push(segment.slice(1));
      return '([^/]+)';
    }
    return escape(segment);
  });
  return { matches: new RegExp(`^${parts.join('/')}$`), params };
}

function decodes(component: string): boolean {
  try {
    decodeURIComponent(component);
    return true;
  } catch {
    return false;
  }
}

export class RouteTable {
  private readonly routes = new Map<string, RoutePattern>();

  add(url: string, method: string | string[]): void {
    let route = this.routes.get(url);
    if (!route) {
      route = { ...compile(url), methods: new Set() };
      this.routes.set(url, route);
    }
    for (const m of Array.isArray(method) ? method : [method]) route.methods.add(m.toUpperCase());
  }

  /** The methods some route serves at `path` (sorted), empty when no route has that path. */
  methodsAt(path: string): string[] {
    const out = new Set<string>();
    for (const route of this.routes.values()) {
      if (route.matches.test(path)) for (const m of route.methods) out.add(m);
    }
    return [...out].sort();
  }

  /** The name of a path parameter of `path` whose raw text does not decode, or null. */
  undecodableParam(path: string): string | null {
    for (const route of this.routes.values()) {
      const match = route.matches.exec(path);
      if (!match) continue;
      const i = route.params.findIndex((_, k) => !decodes(match[k + 1]!));
      if (i >= 0) return route.params[i]!;
    }
    return null;
  }
}
