/**
 * The COPY text helpers that run in the Worker on a whole page, and the SQL that builds a line,
 * without Postgres: the bet that a page read unescaped holds (line, tab and carriage return
 * counts), the escapes of the rare control characters, and a row wider than concat_ws takes.
 * roundtrip.test.ts checks the same code end to end against `COPY … TO STDOUT`.
 */
import { describe, expect, it } from "vitest";
import type { Column } from "../../../src/control/export/catalog.ts";
import { copyLine, countLines, escapeRareControls, unescapedPageHolds } from "../../../src/control/export/copy-text.ts";

const column = (name: string, typeOid: number, notNull: boolean): Column => ({
  name,
  type: "",
  typeOid,
  textOut: null,
  notNull,
  default: null,
  identity: "",
  generated: "",
  collation: null,
  local: true,
});

describe("COPY text", () => {
  it("counts lines by their newlines", () => {
    expect(countLines("")).toBe(0);
    expect(countLines("a\tb\n")).toBe(1);
    expect(countLines("a\nb\nc\n")).toBe(3);
  });

  it("accepts an unescaped page only with one line per row and one tab per field boundary", () => {
    expect(unescapedPageHolds("a\tb\nc\td\n", 2, 2)).toBe(true);
    // A value held a newline, a tab or a carriage return.
    expect(unescapedPageHolds("a\tb\nx\nc\td\n", 2, 2)).toBe(false);
    expect(unescapedPageHolds("a\tb\tx\nc\td\n", 2, 2)).toBe(false);
    expect(unescapedPageHolds("a\tb\r\nc\td\n", 2, 2)).toBe(false);
  });

  it("escapes backspace, form feed and vertical tab as COPY TO does, and leaves other text as is", () => {
    const plain = "no controls \\ here\n";
    expect(escapeRareControls(plain)).toBe(plain);
    expect(escapeRareControls("bs\bff\fvt\v end\n")).toBe("bs\\bff\\fvt\\v end\n");
  });

  it("writes a non-null plain column as itself and a nullable text column escaped, with \\N for NULL", () => {
    const id = column("id", 23, true);
    const name = column('na"me', 25, false);
    expect(copyLine([id], "all")).toBe(`concat_ws(E'\\t', "id")`);
    const escaped = copyLine([id, name], "all");
    expect(escaped).toContain(`coalesce(replace(replace(replace(replace("na""me"::text COLLATE "C"`);
    expect(escaped.endsWith(`E'\\\\N'))`)).toBe(true);
    // Clean (not dirty) text is read with its backslashes escaped only.
    expect(copyLine([id, name], new Set())).toBe(
      `concat_ws(E'\\t', "id", coalesce(replace("na""me"::text COLLATE "C", E'\\\\', E'\\\\\\\\'), E'\\\\N'))`,
    );
    expect(copyLine([], "all")).toBe("''");
  });

  it("joins a row wider than concat_ws takes in groups", () => {
    const wide = Array.from({ length: 130 }, (_, i) => column(`c${i}`, 23, true));
    const sql = copyLine(wide, "all");
    expect(sql.startsWith(`concat_ws(E'\\t', concat_ws(E'\\t', "c0", `)).toBe(true);
    expect(sql.match(/concat_ws\(/g)).toHaveLength(3);
    expect(sql).toContain(`"c89"), concat_ws(E'\\t', "c90", `);
  });
});
