/** `tenantry reconcile` and `tenantry audit`: KV drift repair and the admin audit trail. */
import { output, parse } from "./args.ts";
import { table } from "./format.ts";
import { client } from "./session.ts";

/** Starts a pass (the answer is its first step), or with `--status` shows how far the latest got. */
export async function reconcileCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { status: { type: "boolean" } });
  const method = values.status ? "GET" : "POST";
  const report = await (await client()).call<Record<string, unknown>>(method, "/v1/reconcile");
  output(values, report, (r) =>
    console.log(
      table(
        Object.entries(r).flatMap(([k, v]) =>
          typeof v === "object" && v !== null
            ? Object.entries(v).map(([sub, x]) => [`${k}.${sub}`, Array.isArray(x) ? x.join(", ") || "-" : String(x)])
            : [[k, String(v)]],
        ),
      ),
    ),
  );
}

interface AuditRow {
  at: string;
  actor: string;
  action: string;
  target: string;
  outcome: string;
}

export async function auditCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { target: { type: "string" }, limit: { type: "string" } });
  const query = new URLSearchParams({ limit: values.limit ?? "50" });
  if (values.target) query.set("target", values.target);
  const { items } = await (await client()).call<{ items: AuditRow[] }>("GET", `/v1/audit?${query}`);
  output(values, items, (rows) =>
    console.log(
      table([
        ["AT", "ACTOR", "ACTION", "TARGET", "OUTCOME"],
        ...rows.map((r) => [r.at, r.actor, r.action, r.target, r.outcome]),
      ]),
    ),
  );
}
