/**
 * A tenant's two connection strings at rest in the control database: the app one (AAD: the tenant
 * id, the same ciphertext the edge reads from KV) and the migration one (AAD: "migrate:" + id, so
 * the two can never be swapped). Every sealing and opening of them goes through here, with the key
 * ring of `DB_ENCRYPTION_KEYS` parsed once per value (parsing imports the keys).
 */
import { decryptSecret, encryptSecret, type KeyRing, parseKeyRing, tenantAad } from "../../shared/crypto/secrets.ts";
import { AppError } from "../../shared/errors.ts";
import type { ControlDeps } from "./deps.ts";
import type { TenantRow } from "./rows.ts";

const rings = new Map<string, KeyRing>();
/** The parsed key ring of `DB_ENCRYPTION_KEYS`, parsed once per value. */
export function ring(keys: string): KeyRing {
  let found = rings.get(keys);
  if (!found) {
    found = parseKeyRing(keys);
    rings.set(keys, found);
  }
  return found;
}

export const migrationAad = (tenantId: string) => tenantAad(`migrate:${tenantId}`);

/** Both connection strings of a tenant, encrypted under the current key. */
export async function sealConnections(
  deps: ControlDeps,
  tenantId: string,
  connection: string,
  migrationConnection: string,
): Promise<{ dbSecret: string; migrationSecret: string }> {
  return {
    dbSecret: await encryptSecret(ring(deps.encryptionKeys), connection, tenantAad(tenantId)),
    migrationSecret: await encryptSecret(ring(deps.encryptionKeys), migrationConnection, migrationAad(tenantId)),
  };
}

async function decryptOrFail(keys: string, ciphertext: string | null, aad: string, what: string): Promise<string> {
  if (!ciphertext) throw new AppError(409, "invalid_state", `The tenant has no ${what} yet.`);
  const result = await decryptSecret(ring(keys), ciphertext, aad);
  if (!result.ok) throw new AppError(500, "internal_error", `The tenant's ${what} could not be decrypted.`);
  return result.plaintext;
}

/** Decrypts a tenant's app connection string (for control-plane work such as exports). */
export async function tenantConnection(deps: ControlDeps, row: TenantRow): Promise<string> {
  return decryptOrFail(deps.encryptionKeys, row.dbSecret, tenantAad(row.id), "database connection");
}

/** Decrypts a tenant's migration (DDL) connection string. */
export async function migrationConnection(deps: ControlDeps, row: TenantRow): Promise<string> {
  return decryptOrFail(deps.encryptionKeys, row.migrationSecret, migrationAad(row.id), "migration connection");
}
