/**
 * pg_dump-style export over Neon's HTTP driver (no COPY over HTTP, responses size-capped): the
 * schema from the catalogs and the data as `COPY … FROM stdin` blocks, in an order that restores with
 * `psql -v ON_ERROR_STOP=1` into any Postgres: types and sequences, tables (columns, defaults,
 * identity and generated columns, NOT NULL), data, then sequence values, constraints (primary and
 * unique keys, checks, foreign keys last), indexes, views and comments.
 *
 * This file is the orchestration only: it reads the catalogs (catalog.ts), renders them (ddl.ts)
 * and streams each table's pages of COPY lines (pages.ts, copy-text.ts), counting bytes, rows and
 * per-table checksums (checksum.ts) for the manifest.
 *
 * Why COPY blocks rather than INSERTs: the text is the type's own output, which COPY's input reads
 * back exactly (no quoting rules per type, no statement per row), the file is far smaller and it
 * restores an order of magnitude faster.
 *
 * Consistency: every request reads one snapshot, exported by a session held open for the whole
 * export (snapshot.ts): the dump is the database as it was at one instant, however busy.
 */
import { Buffer } from "node:buffer";
import {
  readComposites,
  readConstraints,
  readDomains,
  readEnums,
  readIdentityLast,
  readIndexes,
  readSchemas,
  readSchemaVersion,
  readSequences,
  readServerMeta,
  readTables,
  type Sequence,
  schemaFilter,
  type Table,
} from "./catalog.ts";
import { TableChecksum } from "./checksum.ts";
import { commentOn, readComments } from "./comments.ts";
import { copyColumns } from "./copy-text.ts";
import {
  addConstraint,
  COMMIT,
  COPY_END,
  copyStart,
  createComposite,
  createDomain,
  createEnum,
  createIndex,
  createSchema,
  createSequence,
  createTable,
  preamble,
  sequenceOwnedBy,
  setIdentityValue,
  setSequenceValue,
} from "./ddl.ts";
import { createExtension, createRange, readExtensions, readRanges } from "./extensions.ts";
import { parentsFirst, readParents } from "./inheritance.ts";
import { PageReader } from "./pages.ts";
import { createPartition, readPartitioning } from "./partitions.ts";
import { createRoutine, createRule, createTrigger, readRoutines, readRules, readTriggers } from "./programs.ts";
import { qualified } from "./quote.ts";
import { createPolicy, readPolicies, readRlsTables, rlsStatements } from "./security.ts";
import { type ExportSql, openSnapshot, type SnapshotHolder, snapshotSql } from "./snapshot.ts";
import { createView, readViews, refreshView } from "./views.ts";

export interface TableManifest {
  readonly name: string;
  readonly rows: number;
  /** 16 hex digits, order-independent: equal for equal sets of rows, whatever the page boundaries. */
  readonly checksum: string;
  readonly bytes: number;
}

export interface ExportStats {
  readonly tables: TableManifest[];
  readonly rows: number;
  readonly bytes: number;
  readonly schemaVersion: string | null;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly ms: number;
}

export interface ExportOptions {
  /**
   * Target size of one page of rows, in bytes of COPY text (default 2 MiB: well under the 10 MB
   * response cap of older Neon docs, and few enough requests that per-request costs stay small).
   */
  readonly pageBytes?: number;
  /** Schemas left out (default: `tenantry`, the migration ledger). */
  readonly excludeSchemas?: readonly string[];
  /** Called after every page, for progress. */
  readonly onProgress?: (table: string, rows: number) => void;
}

/** One export in progress: its connection and settings, and the manifest data gathered so far. */
interface ExportRun {
  /** Set once the snapshot is open (see generate). */
  sql: ExportSql;
  readonly connectionString: string;
  /** The schema filter of every catalog query (see schemaFilter). */
  readonly nsFilter: string;
  readonly pageBytes: number;
  readonly onProgress: ExportOptions["onProgress"];
  readonly tables: TableManifest[];
  /** Bytes of SQL text generated so far. */
  bytes: number;
  schemaVersion: string | null;
  finished: boolean;
}

/** Counts a chunk's bytes into the run (`bytes` when the caller knows them) and passes it on. */
function emit(run: ExportRun, text: string, bytes = Buffer.byteLength(text)): string {
  run.bytes += bytes;
  return text;
}

/** Generates the dump as chunks of SQL text; `stats()` is complete once the generator is done. */
export function exportDatabase(connectionString: string, options: ExportOptions = {}) {
  const run: ExportRun = {
    sql: unopened,
    connectionString,
    nsFilter: schemaFilter(options.excludeSchemas ?? ["tenantry"]),
    pageBytes: options.pageBytes ?? 2 * 1024 * 1024,
    onProgress: options.onProgress,
    tables: [],
    bytes: 0,
    schemaVersion: null,
    finished: false,
  };
  const started = Date.now();
  return {
    chunks: generate(run),
    /** The manifest data; throws if the export has not finished. */
    stats(): ExportStats {
      if (!run.finished) throw new Error("the export has not finished");
      return {
        tables: run.tables,
        rows: run.tables.reduce((total, t) => total + t.rows, 0),
        bytes: run.bytes,
        schemaVersion: run.schemaVersion,
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date().toISOString(),
        ms: Date.now() - started,
      };
    },
  };
}

/** Stands in for the snapshot's reader until it is open. */
const unopened: ExportSql = {
  rows: () => Promise.reject(new Error("the export's snapshot is not open")),
  arrays: () => Promise.reject(new Error("the export's snapshot is not open")),
};

/**
 * The whole dump, inside one snapshot (snapshot.ts) held open from the first catalog query to the
 * last page, and closed however the generator ends (finished, failed, or abandoned by its reader).
 */
async function* generate(run: ExportRun): AsyncGenerator<string> {
  const holder: SnapshotHolder = await openSnapshot(run.connectionString);
  try {
    run.sql = snapshotSql(run.connectionString, holder.id);
    yield* sections(run);
  } finally {
    await holder.close();
  }
}

/** The dump, section by section, each catalog query made just before its section is written. */
async function* sections(run: ExportRun): AsyncGenerator<string> {
  run.schemaVersion = await readSchemaVersion(run.sql);
  yield emit(run, preamble(await readServerMeta(run.sql), run.schemaVersion));
  const sequences = yield* types(run);
  const routines = await readRoutines(run.sql, run.nsFilter);
  for (const r of routines.filter((r) => !r.onRelations)) yield emit(run, createRoutine(r));
  const parents = await readParents(run.sql, run.nsFilter);
  const partitioning = await readPartitioning(run.sql, run.nsFilter);
  const order = new Map(parents);
  for (const [oid, p] of partitioning) if (p.parent) order.set(oid, [p.parent]);
  const tables = parentsFirst(await readTables(run.sql, run.nsFilter), order);
  for (const table of tables) {
    const p = partitioning.get(table.oid);
    yield emit(run, p?.parent ? createPartition(table, p) : createTable(table, parents.get(table.oid), p?.key));
  }
  for (const r of routines.filter((r) => r.onRelations)) yield emit(run, createRoutine(r));
  for (const s of sequences) {
    const owned = sequenceOwnedBy(s);
    if (owned) yield emit(run, owned);
  }
  // Rows live in plain tables and leaf partitions; a partitioned table holds none of its own.
  for (const table of tables) if (table.kind === "r") yield* tableData(run, table);
  yield emit(run, "\n");
  yield* sequenceValues(run, sequences, tables);
  const partitionedNames = new Set(tables.filter((t) => t.kind === "p").map((t) => `${t.schema}.${t.name}`));
  for (const c of await readConstraints(run.sql, run.nsFilter))
    yield emit(run, addConstraint(c, partitionedNames.has(`${c.schema}.${c.table}`)));
  const views = await readViews(run.sql, run.nsFilter);
  for (const v of views) yield emit(run, createView(v));
  for (const def of await readIndexes(run.sql, run.nsFilter)) yield emit(run, createIndex(def));
  for (const t of await readTriggers(run.sql, run.nsFilter)) yield emit(run, createTrigger(t));
  for (const def of await readRules(run.sql, run.nsFilter)) yield emit(run, createRule(def));
  for (const t of await readRlsTables(run.sql, run.nsFilter)) yield emit(run, rlsStatements(t));
  for (const p of await readPolicies(run.sql, run.nsFilter)) yield emit(run, createPolicy(p));
  for (const v of views) {
    const refresh = refreshView(v);
    if (refresh) yield emit(run, refresh);
  }
  for (const c of await readComments(run.sql, run.nsFilter)) yield emit(run, commentOn(c));
  yield emit(run, COMMIT);
  run.finished = true;
}

/** Schemas other than public, enums, domains, composite types and sequences; returns the sequences. */
async function* types(run: ExportRun): AsyncGenerator<string, Sequence[]> {
  for (const name of await readSchemas(run.sql, run.nsFilter)) yield emit(run, createSchema(name));
  for (const e of await readExtensions(run.sql, run.nsFilter)) yield emit(run, createExtension(e));
  for (const e of await readEnums(run.sql, run.nsFilter)) yield emit(run, createEnum(e));
  for (const d of await readDomains(run.sql, run.nsFilter)) yield emit(run, createDomain(d));
  for (const c of await readComposites(run.sql, run.nsFilter)) yield emit(run, createComposite(c));
  for (const r of await readRanges(run.sql, run.nsFilter)) yield emit(run, createRange(r));
  const sequences = await readSequences(run.sql, run.nsFilter);
  for (const s of sequences) yield emit(run, createSequence(s));
  return sequences;
}

/** One table's data block, page by page, and its manifest entry. */
async function* tableData(run: ExportRun, table: Table): AsyncGenerator<string> {
  const columns = copyColumns(table.columns);
  yield emit(run, copyStart(table, columns));
  const pages = new PageReader(run.sql, table, qualified(table.schema, table.name), columns, run.pageBytes);
  let count = 0;
  let bytes = 0;
  const checksum = new TableChecksum();
  for (;;) {
    const page = await pages.next();
    if (!page) break;
    checksum.add(page.hash);
    count += page.rows;
    bytes += page.bytes;
    yield emit(run, page.lines, page.bytes);
    run.onProgress?.(`${table.schema}.${table.name}`, count);
  }
  yield emit(run, COPY_END);
  run.tables.push({ name: `${table.schema}.${table.name}`, rows: count, checksum: checksum.hex(), bytes });
}

/** Where every sequence was, standalone ones first, then each identity column's (one query each). */
async function* sequenceValues(run: ExportRun, sequences: Sequence[], tables: Table[]): AsyncGenerator<string> {
  for (const s of sequences) {
    const set = setSequenceValue(s);
    if (set) yield emit(run, set);
  }
  for (const table of tables) {
    for (const c of table.columns) {
      if (c.identity !== "a" && c.identity !== "d") continue;
      const last = await readIdentityLast(run.sql, qualified(table.schema, table.name), c.name);
      if (last) yield emit(run, setIdentityValue(table, c, last));
    }
  }
}
