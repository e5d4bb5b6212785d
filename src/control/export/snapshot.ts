/**
 * One snapshot for the whole export. Neon's HTTP driver has no sessions, so each catalog query and
 * each page of rows is its own request, in its own transaction; read that way, a busy tenant's
 * dump could hold order items without their order, and a state that never existed at any instant.
 *
 * So the export first opens one session over the driver's WebSocket `Client` (locally: the
 * gateway's `/v2`), begins a `REPEATABLE READ READ ONLY` transaction there and exports its snapshot
 * (`pg_export_snapshot()`); that session holds the transaction open, idle, until the export ends.
 * Every request of the export is then an HTTP transaction, `REPEATABLE READ READ ONLY` too, whose
 * first statement is `SET TRANSACTION SNAPSHOT '<id>'`: whatever request reads it, every catalog
 * row and every page sees the database exactly as it was when the snapshot was taken (the
 * approach of `pg_dump --jobs`), and page requests still run in parallel. If the holding session
 * is lost, the next request fails ("invalid snapshot identifier") and so does the export: it never
 * falls back to reading outside the snapshot.
 *
 * Also here: the empty search_path of every query (see catalog.ts), `row_security = off` (see
 * security.ts) and the raw value parsing.
 */
import { Client, neon } from "@neondatabase/serverless";
import { literal } from "./quote.ts";

/** Every value as Postgres prints it: the driver must not parse anything. */
export const RAW_TYPES = { getTypeParser: () => (value: string) => value };

/** The export's one way to read the tenant's database: each call one request, inside the snapshot. */
export interface ExportSql {
  /** Rows as objects keyed by column name. */
  rows<T>(text: string, params?: unknown[]): Promise<T[]>;
  /** Rows as arrays of column values. */
  arrays(text: string, params?: unknown[]): Promise<(string | null)[][]>;
}

/** A session holding the snapshot's transaction open; `close` ends both. */
export interface SnapshotHolder {
  readonly id: string;
  close(): Promise<void>;
}

/** How often the idle holding session sends a no-op, so no proxy takes it for abandoned. */
const KEEPALIVE_MS = 60_000;

/** Opens the holding session and exports its snapshot. */
export async function openSnapshot(connectionString: string): Promise<SnapshotHolder> {
  const client = new Client({ connectionString });
  // A session that goes away mid-export surfaces as the next request's error, not as an uncaught event.
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const result = await client.query<{ id: string }>("SELECT pg_export_snapshot() AS id");
    const id = result.rows[0]?.id;
    if (!id) throw new Error("pg_export_snapshot() returned nothing");
    const keepalive = setInterval(() => void client.query("SELECT 1").catch(() => undefined), KEEPALIVE_MS);
    return {
      id,
      async close() {
        clearInterval(keepalive);
        await client.query("COMMIT").catch(() => undefined);
        await client.end().catch(() => undefined);
      },
    };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/** Reads over HTTP, every request a read-only transaction on `snapshot` with an empty search_path. */
export function snapshotSql(connectionString: string, snapshot: string): ExportSql {
  const sql = neon(connectionString, { fullResults: false, readOnly: true });
  const run = async (text: string, params: unknown[], arrayMode: boolean) => {
    const results = await sql.transaction(
      [
        sql.query(`SET TRANSACTION SNAPSHOT ${literal(snapshot)}`),
        // Rows a policy would hide fail the query instead (see security.ts).
        sql.query("SELECT set_config('search_path', '', true), set_config('row_security', 'off', true)"),
        // Per-query options inside a batch are honored; the types want one mode for the batch.
        sql.query(text, params, { arrayMode: arrayMode as false, fullResults: false, types: RAW_TYPES }),
      ],
      { isolationLevel: "RepeatableRead", readOnly: true },
    );
    return results[2] as unknown[];
  };
  return {
    rows: async <T>(text: string, params: unknown[] = []) => (await run(text, params, false)) as T[],
    arrays: async (text: string, params: unknown[] = []) => (await run(text, params, true)) as (string | null)[][],
  };
}
