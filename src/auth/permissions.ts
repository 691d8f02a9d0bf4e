/** What a caller may be allowed to do. The names are part of the public policy-file contract. */
export const PERMISSIONS = [
  'device-groups:read',
  /** Create, rotate the secret of, and delete device groups. */
  'device-groups:write',
  /** Read a group's plaintext provision secret: certificate workers only. */
  'provision-secret:read',
  'audit:read',
  'keys:admin',
] as const;

export type Permission = (typeof PERMISSIONS)[number];
