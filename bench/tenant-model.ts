/**
 * A model of the database side of 10,000 tenants, for the scale bench: instead of 10,000 real
 * databases, the SQL-over-HTTP requests of `@neondatabase/serverless` to a tenant database (a
 * connection string on the model's host) are answered here, in the driver's own wire format
 * (NEON-HTTP.md), by a tiny model of what the project's migrator reads and writes: the ledger
 * `tenantry.migrations` of each tenant (a transaction that inserts a ledger row twice fails with
 * 23505 and changes nothing, as Postgres would). Every other statement succeeds with no rows. The
 * time a query takes is the Neon-like profile's (its round trip and wake-up), not this model's.
 * Requests to any other host (the control database) go through to `inner`.
 */
import type { MigrationBundle } from "../src/shared/migrations.ts";

type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

interface Query {
  readonly query: string;
  readonly params?: readonly unknown[];
}

const TEXT = 25;
const BOOL = 16;

const field = (name: string, dataTypeID: number) => ({
  name,
  dataTypeID,
  tableID: 0,
  columnID: 0,
  dataTypeSize: -1,
  dataTypeModifier: -1,
  format: "text",
});

const result = (rows: unknown[][], fields: ReturnType<typeof field>[] = []) => ({
  command: "SELECT",
  rowCount: rows.length,
  rows,
  fields,
  rowAsArray: true,
});

export class TenantDatabaseModel {
  /** Per database (connection-string path), the ledger: migration name → checksum. */
  private readonly ledgers = new Map<string, Map<string, string>>();
  /** Requests answered. */
  requests = 0;

  constructor(
    readonly host: string,
    private readonly bundle: MigrationBundle,
  ) {}

  /** A connection string of the model's database `name`. */
  url(name: string): string {
    return `postgresql://tenant:model@${this.host}/${name}`;
  }

  /** Gives database `name` the first `count` migrations of the bundle. */
  seed(name: string, count: number): void {
    this.ledgers.set(name, new Map(this.bundle.slice(0, count).map((m) => [m.name, m.checksum])));
  }

  /** Databases whose ledger holds every migration of the bundle with the bundle's checksum. */
  atLatest(): number {
    let n = 0;
    for (const ledger of this.ledgers.values()) {
      if (this.bundle.every((m) => ledger.get(m.name) === m.checksum)) n += 1;
    }
    return n;
  }

  fetchFunction(inner: FetchFunction): FetchFunction {
    return async (input, init) => {
      const connection = new Headers(init?.headers).get("neon-connection-string");
      const url = connection ? new URL(connection) : undefined;
      if (!url || url.hostname !== this.host) return inner(input, init);
      this.requests += 1;
      const body = JSON.parse(String(init?.body ?? "{}")) as Query & { queries?: Query[] };
      return this.answer(url.pathname.slice(1), body.queries ?? [body], body.queries !== undefined);
    };
  }

  private answer(database: string, queries: readonly Query[], batch: boolean): Response {
    const ledger = this.ledgers.get(database);
    if (!ledger) return json(400, { message: `database "${database}" does not exist`, code: "3D000" });
    const inserted = new Map<string, string>();
    const results = [];
    for (const { query, params } of queries) {
      if (/^INSERT INTO tenantry\.migrations/i.test(query)) {
        const [name, checksum] = (params ?? []).map(String);
        if (!name || !checksum) return json(400, { message: "ledger row without a name", code: "23502" });
        if (ledger.has(name) || inserted.has(name)) {
          return json(400, { message: "duplicate key value violates unique constraint", code: "23505" });
        }
        inserted.set(name, checksum);
        results.push({ ...result([]), command: "INSERT", rowCount: 1 });
      } else if (/^SELECT name, checksum FROM tenantry\.migrations/i.test(query)) {
        const rows = [...ledger, ...inserted].sort(([a], [b]) => a.localeCompare(b));
        results.push(result(rows, [field("name", TEXT), field("checksum", TEXT)]));
      } else if (/to_regclass/i.test(query)) {
        results.push(result([["t"]], [field("present", BOOL)]));
      } else {
        results.push(result([]));
      }
    }
    // The whole request is one transaction: it commits only when every statement succeeded.
    for (const [name, checksum] of inserted) ledger.set(name, checksum);
    return json(200, batch ? { results } : results[0]);
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}
