/**
 * The tenant record the edge reads from KV (docs/kv-schema.md). Written by the control plane (and the
 * dev seed), read by the Worker; versioned so a reader can refuse a shape it does not know.
 */
import { z } from "zod";

export const TENANT_STATUSES = ["active", "suspended", "migrating", "deleted"] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

export const tenantRecordSchema = z.object({
  v: z.literal(1),
  id: z.string().min(1).max(64),
  slug: z.string().min(1).max(63),
  status: z.enum(TENANT_STATUSES),
  region: z.string().min(1).max(32),
  schemaVersion: z.string().nullable(),
  /** Connection string encrypted with AES-256-GCM, tenant id as AAD (src/shared/crypto/secrets.ts). */
  db: z.string().min(1),
  updatedAt: z.string(),
});

export type TenantRecord = z.infer<typeof tenantRecordSchema>;

export const hostKey = (host: string) => `host:${host}`;
export const slugKey = (slug: string) => `slug:${slug}`;

/** Parses a KV value; `undefined` for anything that is not a valid v1 record. */
export function parseTenantRecord(value: unknown): TenantRecord | undefined {
  const parsed = tenantRecordSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
