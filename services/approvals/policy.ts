import type { ApprovalSlot } from '../environments/model.js';

export type ApproverRole = 'engineering' | 'sre';

/**
 * The approval slots still open after matching `approvals` (one per distinct
 * subject) to `required`. Specific roles are filled first so an "any" slot
 * never takes an approval a named role needed.
 */
export function openSlots(required: readonly ApprovalSlot[], approvals: ReadonlyArray<{ role: string }>): ApprovalSlot[] {
  const open = [...required];
  const leftovers: string[] = [];
  for (const a of approvals) {
    const i = open.indexOf(a.role as ApprovalSlot);
    if (i >= 0) open.splice(i, 1);
    else leftovers.push(a.role);
  }
  for (const _ of leftovers) {
    const i = open.indexOf('any');
    if (i >= 0) open.splice(i, 1);
  }
  return open;
}

/** Whether one more approval in `role` fills an open slot. */
export function fillsASlot(open: readonly ApprovalSlot[], role: ApproverRole): boolean {
  return open.includes(role) || open.includes('any');
}
