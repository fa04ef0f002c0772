export const ROLES = ['viewer', 'requester', 'engineering', 'sre', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who is acting: the authenticated subject and its roles. */
export interface Principal {
  subject: string;
  roles: Role[];
}

/** True when the principal holds `role`; admin holds every role. */
export function hasRole(principal: Principal, role: Role): boolean {
  return principal.roles.includes(role) || principal.roles.includes('admin');
}

/**
 * The identity a subject names, for comparisons: Unicode NFKC, then case
 * folded (upper then lower case folds ß/ss, ς/σ and the like the way full case
 * folding does), then NFKC again since folding can denormalize. "alice",
 * "Alice" and "ａｌｉｃｅ" are one person: separation of duties compares this,
 * never the spelling a token file happens to use.
 */
export function subjectKey(subject: string): string {
  return subject.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/** Whether two subjects name the same person (see subjectKey). */
export function sameSubject(a: string, b: string): boolean {
  return a === b || subjectKey(a) === subjectKey(b);
}
