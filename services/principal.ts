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
