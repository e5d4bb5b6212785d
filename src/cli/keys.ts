/**
 * `tenantry keys [reencrypt]`: connection strings at rest per encryption key id, and their
 * re-encryption under the current key after a DB_ENCRYPTION_KEYS rotation (src/control/keys.ts).
 */
import type { KeyStatus, ReencryptReport } from "../control/keys.ts";
import { output, parse, positiveInt, UsageError } from "./args.ts";
import { table } from "./format.ts";
import { client } from "./session.ts";

function printKeys(status: KeyStatus): void {
  const kids = [
    ...new Set(
      [...status.kids, ...Object.keys(status.secrets), ...Object.keys(status.kv ?? {})].filter((k) => k !== "missing"),
    ),
  ];
  // SECRETS: the control database; KV RECORDS: what the edge decrypts, read from KV itself.
  console.log(
    table([
      ["KEY ID", "IN RING", "SECRETS", "KV RECORDS"],
      ...kids.map((kid) => [
        kid === status.currentKid ? `${kid} (current)` : kid,
        status.kids.includes(kid) ? "yes" : "NO",
        String(status.secrets[kid] ?? 0),
        String(status.kv?.[kid] ?? 0),
      ]),
    ]),
  );
  if ((status.kvBehind ?? 0) > 0)
    console.log(
      `${status.kvBehind} KV record(s) do not hold the current ciphertext: \`tenantry keys reencrypt\` rewrites them`,
    );
  console.log(
    status.stale === 0
      ? "every secret is under the current key: keys other than it can be removed from the ring"
      : `${status.stale} connection string(s) under other keys, at rest or in KV records: run \`tenantry keys reencrypt\` before removing a key`,
  );
}

function printReport(r: ReencryptReport): void {
  printKeys(r);
  if (r.reprojected > 0) console.log(`${r.reprojected} KV record(s) rewritten with the current ciphertext`);
  if (r.kvFailed > 0) console.log(`${r.kvFailed} KV write(s) failed: run it again to write them`);
  if (r.changed > 0) console.log(`${r.changed} tenant(s) changed meanwhile: run it again to look at them`);
  if (r.failed.length > 0) {
    console.log(table([["TENANT", "SECRET", "REASON"], ...r.failed.map((f) => [f.slug, f.secret, f.reason])]));
  }
}

async function reencrypt(rest: string[]): Promise<number> {
  const { values } = parse(rest, { batch: { type: "string", default: "100" } });
  const batch = positiveInt(values.batch, "--batch", 500) ?? 100;
  const api = await client();
  const failed: ReencryptReport["failed"] = [];
  let reencrypted = 0;
  let reprojected = 0;
  let kvFailed = 0;
  let changed = 0;
  let after: string | null = null;
  let last: ReencryptReport;
  do {
    const query = new URLSearchParams({ limit: String(batch), ...(after ? { after } : {}) });
    last = await api.call<ReencryptReport>("POST", `/v1/keys/reencrypt?${query}`);
    reencrypted += last.reencrypted;
    reprojected += last.reprojected;
    kvFailed += last.kvFailed;
    changed += last.changed;
    failed.push(...last.failed);
    after = last.next;
    if (!values.json) console.error(`re-encrypted ${reencrypted} so far, ${last.stale} left under other keys`);
  } while (after);
  output(values, { ...last, reencrypted, reprojected, kvFailed, changed, failed, next: null }, printReport);
  return failed.length > 0 || kvFailed > 0 ? 1 : 0;
}

export async function keysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub.startsWith("--")) {
    const { values } = parse(args, {});
    output(values, await (await client()).call<KeyStatus>("GET", "/v1/keys"), printKeys);
    return 0;
  }
  if (sub !== "reencrypt") throw new UsageError(`unknown keys command ${JSON.stringify(sub)}`);
  return reencrypt(rest);
}
