/**
 * Page reading: a table's rows as pages of COPY lines (see copy-text.ts), each page about
 * `pageBytes`, one request per page (the row count and the lines joined into one string: one value
 * to carry instead of one per row). Memory stays flat whatever the table's size: at most
 * PAGES_IN_FLIGHT + 1 pages at a time.
 *
 * The first pages' row count comes from the table's size on disk per row (see firstLimit), the
 * next ones' from the bytes per row of the last page read. With a primary key the table is cut
 * into key ranges ahead of time: a cheap keys-only query finds where the next page ends, so the
 * next ranges are requested while one is read, and Postgres builds them in parallel. The ranges
 * cover the key space without overlap, and every request reads the export's one snapshot
 * (snapshot.ts), so every row is read exactly once. Without a key, pages follow each other by ctid, the next one requested as soon as
 * a page arrives.
 *
 * Text-like columns are read without newline, carriage return and tab escaping until a page shows
 * that one of them holds such characters (see copyField): that page is read again with everything
 * escaped, which also tells which columns did, and those stay escaped for the rest of the table.
 */
import { Buffer } from "node:buffer";
import type { Column, Table } from "./catalog.ts";
import { countLines, escapeRareControls, pageQuery, textLikeColumns, unescapedPageHolds } from "./copy-text.ts";
import { ident } from "./quote.ts";
import type { ExportSql } from "./snapshot.ts";

export interface Page {
  readonly rows: number;
  /** The rows' COPY lines, each ending in a newline (Postgres adds the last one: no copy of the page here), in no particular order. */
  readonly lines: string;
  /** UTF-8 bytes of `lines`. */
  readonly bytes: number;
  /** The sum of the lines' 64-bit hashes, a decimal integer (see TableChecksum). */
  readonly hash: string;
}

/** A page as read: without a key, also its last ctid and the row limit it was asked with. */
interface ReadPage extends Page {
  readonly lastCtid?: string | undefined;
  readonly limit?: number | undefined;
}

/** Pages in flight at once on a keyed table: Postgres builds one while it sends another. */
const PAGES_IN_FLIGHT = 2;

/**
 * Rows in a table's first pages, before any page has been read: what fits `pageBytes` if a row's
 * COPY text were 4× its share of the table's size on disk (TOAST compresses wide values), at most
 * 500. Without a row estimate (never analyzed), the whole table counts as one row. A table of a
 * few huge rows starts with pages of one row, not 500 of them.
 */
function firstLimit(pageBytes: number, diskBytes: number, tuples: number): number {
  const perRow = tuples >= 1 ? diskBytes / tuples : diskBytes;
  return Math.max(1, Math.min(500, Math.floor(pageBytes / Math.max(1, perRow * 4))));
}

/** One table's pages, in turn: `next()` until it returns undefined. */
export class PageReader {
  private readonly sql: ExportSql;
  private readonly table: Table;
  /** The table, qualified and quoted. */
  private readonly name: string;
  private readonly columns: readonly Column[];
  private readonly pageBytes: number;
  private readonly byKey: boolean;
  /** The key columns, qualified, or the ctid. */
  private readonly keys: string[];
  private readonly tuple: string;
  private readonly textLike: Column[];
  /** Text-like columns seen holding a newline, carriage return or tab: escaped in every later page. */
  private readonly dirty = new Set<string>();
  /** Rows in the next page. */
  private limit: number;
  private readonly queue: Promise<ReadPage>[] = [];
  /** Keyed: where the next range starts (undefined: at the first row). */
  private start: (string | null)[] | undefined;
  private exhausted = false;
  private planning: Promise<void> | undefined;
  private planFailure: { error: unknown } | undefined;

  constructor(sql: ExportSql, table: Table, name: string, columns: readonly Column[], pageBytes: number) {
    this.sql = sql;
    this.table = table;
    this.name = name;
    this.columns = columns;
    this.pageBytes = pageBytes;
    this.byKey = table.key.length > 0;
    // Qualified: a bare name in ORDER BY means an output column of that name first (`"id"::text` is
    // named "id"), and a key's text order is not its order.
    this.keys = this.byKey ? table.key.map((k) => `${name}.${ident(k.name)}`) : [`${name}.ctid`];
    this.tuple = `(${this.keys.join(", ")})`;
    this.textLike = textLikeColumns(columns);
    this.limit = firstLimit(pageBytes, table.diskBytes, table.tuples);
  }

  /** The next page that holds rows, or undefined after the last. */
  async next(): Promise<Page | undefined> {
    for (;;) {
      if (this.byKey) {
        this.plan();
        while (this.queue.length === 0 && this.planning) await this.planning;
        if (this.planFailure) throw this.planFailure.error;
      } else if (!this.exhausted && this.queue.length === 0) {
        this.enqueue(this.read([], [], this.limit));
      }
      const page = await this.queue.shift();
      if (!page) return undefined;
      // The next pages are sized on this one, before they are requested.
      if (page.rows > 0)
        this.limit = Math.max(1, Math.min(50_000, Math.floor((this.pageBytes * page.rows) / page.bytes)));
      if (this.byKey) this.plan();
      else {
        // The next ctid page starts after this one's last row; a short page was the last.
        if (page.limit !== undefined && page.rows === page.limit && page.lastCtid)
          this.enqueue(this.read(["ctid > $1::tid"], [page.lastCtid], this.limit));
        else this.exhausted = true;
      }
      // A key range can be empty (its rows deleted meanwhile, or the last range): read on.
      if (page.rows > 0) return page;
    }
  }

  private run(text: string, values: unknown[]): Promise<(string | null)[][]> {
    return this.sql.arrays(text, values);
  }

  /** `($from::type, …)`: a key's values as parameters, from `$from` on. */
  private params(from: number): string {
    return `(${this.table.key.map((k, i) => `$${from + i}::${k.type}`).join(", ")})`;
  }

  private enqueue(page: Promise<ReadPage>): void {
    // Awaited in turn: a failure surfaces there, not as an unhandled rejection.
    page.catch(() => {});
    this.queue.push(page);
  }

  /**
   * One page, its clean text-like columns read unescaped. If the page does not hold, it is read
   * again with everything escaped (`recheck`: the columns that were read unescaped), with a flag per
   * such column saying whether it held a control character.
   */
  private async read(where: string[], values: unknown[], limit?: number, recheck?: Column[]): Promise<ReadPage> {
    const escapeAll = recheck !== undefined;
    const clean = escapeAll ? [] : this.textLike.filter((c) => !this.dirty.has(c.name));
    const flags = recheck ?? [];
    const [row] = await this.run(
      pageQuery({
        name: this.name,
        only: this.table.kind !== "p",
        columns: this.columns,
        byKey: this.byKey,
        keys: this.keys,
        dirty: escapeAll ? "all" : this.dirty,
        flags,
        where,
        limit,
      }),
      values,
    );
    const rows = Number(row?.[0] ?? 0);
    const lines = row?.[2] ?? "";
    if (clean.length > 0 && rows > 0) {
      if (!unescapedPageHolds(lines, rows, this.columns.length)) return this.read(where, values, limit, clean);
    } else if (rows > 0) {
      // Escaped, a page has exactly one line per row: anything else is a corrupt response.
      const lineCount = countLines(lines);
      if (lineCount !== rows) throw new Error(`${this.name}: a page of ${rows} rows held ${lineCount} lines`);
    }
    flags.forEach((column, i) => {
      if (row?.[5 + i] === "true") this.dirty.add(column.name);
    });
    const escaped = escapeRareControls(lines);
    return {
      rows,
      lines: escaped,
      bytes: escaped === lines ? Number(row?.[1] ?? 0) : Buffer.byteLength(escaped),
      hash: row?.[4] ?? "0",
      lastCtid: row?.[3] ?? undefined,
      limit,
    };
  }

  /** Keyed: the key of the row `limit` rows after `start`, or undefined when fewer are left. */
  private async boundary(): Promise<(string | null)[] | undefined> {
    const [row] = await this.run(
      `SELECT ${this.keys.map((key) => `${key}::text`).join(", ")} FROM ${this.table.kind !== "p" ? "ONLY " : ""}${this.name}
       ${this.start ? `WHERE ${this.tuple} > ${this.params(1)}` : ""} ORDER BY ${this.keys.join(", ")} OFFSET ${this.limit - 1} LIMIT 1`,
      this.start ?? [],
    );
    return row;
  }

  /**
   * Keyed: cuts the next key ranges and requests them until PAGES_IN_FLIGHT are queued, in the
   * background, so the caller gets a page without waiting for the next boundary. A failure is kept
   * and thrown by `next`.
   */
  private plan(): void {
    if (!this.byKey || this.planning || this.exhausted || this.planFailure || this.queue.length >= PAGES_IN_FLIGHT)
      return;
    this.planning = this.cutRanges();
  }

  private async cutRanges(): Promise<void> {
    // Never settles before `planning` is set (the finally below clears it).
    await undefined;
    try {
      while (!this.exhausted && this.queue.length < PAGES_IN_FLIGHT) {
        const from = this.start;
        const to = await this.boundary();
        const where: string[] = [];
        if (from) where.push(`${this.tuple} > ${this.params(1)}`);
        if (to) where.push(`${this.tuple} <= ${this.params(from ? from.length + 1 : 1)}`);
        this.enqueue(this.read(where, [...(from ?? []), ...(to ?? [])]));
        this.start = to;
        this.exhausted = to === undefined;
      }
    } catch (error) {
      this.planFailure = { error };
    } finally {
      this.planning = undefined;
    }
  }
}
