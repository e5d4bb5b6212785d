/**
 * The DDL renderer on hand-built catalog values, without Postgres: the exact statements a restore
 * runs, every name quoted (capitals, spaces, double quotes and single quotes survive), fragments
 * Postgres rendered (defaults, checks, index and view definitions) written as given, and the
 * optional statements left out when there is nothing to say.
 */
import { describe, expect, it } from "vitest";
import type { Column, Domain, Sequence, Table } from "../../../src/control/export/catalog.ts";
import { copyColumns } from "../../../src/control/export/copy-text.ts";
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
} from "../../../src/control/export/ddl.ts";
import { commentText, ident, literal, qualified } from "../../../src/control/export/quote.ts";
import { createView, refreshView } from "../../../src/control/export/views.ts";

const column = (name: string, extra: Partial<Column> = {}): Column => ({
  name,
  type: "text",
  typeOid: 25,
  textOut: null,
  notNull: false,
  default: null,
  identity: "",
  generated: "",
  collation: null,
  local: true,
  ...extra,
});

const table = (schema: string, name: string, columns: Column[]): Table => ({
  oid: "16384",
  schema,
  name,
  kind: "r",
  columns,
  key: [],
  diskBytes: 0,
  tuples: 0,
});

const sequence = (extra: Partial<Sequence> = {}): Sequence => ({
  schema: "public",
  name: "ticket_seq",
  type: "bigint",
  start: "1000",
  increment: "5",
  min: "1",
  max: "9223372036854775807",
  cache: "1",
  cycle: false,
  last: null,
  ownerTable: null,
  ownerColumn: null,
  ...extra,
});

describe("quoting", () => {
  it("double-quotes names and single-quotes literals, doubling the quote character", () => {
    expect(ident("id")).toBe('"id"');
    expect(ident('we"ird')).toBe('"we""ird"');
    expect(ident("Mixed Case")).toBe('"Mixed Case"');
    expect(literal("it's")).toBe("'it''s'");
    expect(literal('a"b')).toBe("'a\"b'");
    expect(qualified('s"1', "t 2")).toBe('"s""1"."t 2"');
  });

  it("writes a literal holding a backslash as an E'' string, which lexes the same under either setting", () => {
    expect(literal("a\\b")).toBe("E'a\\\\b'");
    expect(literal("x'\\'; \\! touch f")).toBe("E'x''\\\\''; \\\\! touch f'");
    expect(literal("new\nline")).toBe("'new\nline'");
  });

  it("keeps comment text on one line: control characters and line separators escaped", () => {
    expect(commentText("db\n\\! touch /tmp/x")).toBe("db\\x0a\\! touch /tmp/x");
    expect(commentText("a\rb\tc\u0000d\u007fe\u0085f\u2028g\u2029h")).toBe(
      "a\\x0db\\x09c\\x00d\\x7fe\\x85f\\u2028g\\u2029h",
    );
    expect(commentText("plain ünï 🌍 'q' \"dq\"")).toBe("plain ünï 🌍 'q' \"dq\"");
  });
});

describe("DDL rendering", () => {
  it("opens with the session settings and the transaction, naming the source", () => {
    const text = preamble({ db: "tenant_acme", version: "17.2" }, "0007_orders");
    expect(text.split("\n")[0]).toBe(
      "-- Tenantry export of database tenant_acme (Postgres 17.2), schema version 0007_orders",
    );
    expect(text).toContain("SET standard_conforming_strings = on;\n");
    expect(text).toContain("SELECT pg_catalog.set_config('search_path', '', false);\nBEGIN;\n\n");
    expect(text.endsWith("BEGIN;\n\n")).toBe(true);
    const hostile = preamble({ db: "x\n\\! touch /tmp/pwn", version: "17\r\\! id" }, "0001\n\\! rm -rf ~");
    expect(hostile.split("\n")[0]).toBe(
      "-- Tenantry export of database x\\x0a\\! touch /tmp/pwn (Postgres 17\\x0d\\! id), schema version 0001\\x0a\\! rm -rf ~",
    );
    expect(hostile.split("\n")[1]).toMatch(/^-- Restore into an empty database/);
    expect(preamble(undefined, null).split("\n")[0]).toBe(
      "-- Tenantry export of database ? (Postgres ?), schema version none",
    );
    expect(COMMIT).toBe("\nCOMMIT;\n");
  });

  it("creates schemas and types with quoted names", () => {
    expect(createSchema('we"ird sch')).toBe('CREATE SCHEMA IF NOT EXISTS "we""ird sch";\n');
    expect(createEnum({ schema: "public", name: "Mood", labels: ["sad", "it's complicated", "back\\slash"] })).toBe(
      `CREATE TYPE "public"."Mood" AS ENUM ('sad', 'it''s complicated', E'back\\\\slash');\n`,
    );
    expect(createEnum({ schema: "public", name: "empty", labels: [] })).toBe(
      'CREATE TYPE "public"."empty" AS ENUM ();\n',
    );
    expect(
      createComposite({
        schema: "public",
        name: "money pair",
        attrs: [
          { name: "amount", type: "numeric(12,2)" },
          { name: 'cu"r', type: "text" },
        ],
      }),
    ).toBe('CREATE TYPE "public"."money pair" AS ("amount" numeric(12,2), "cu""r" text);\n');
  });

  it("creates a domain with its default, NOT NULL and checks, each only when present", () => {
    const domain: Domain = {
      schema: "public",
      name: "d-om",
      base: "text",
      notNull: true,
      default: "'z'::text",
      checks: [{ name: 'd-om"check', def: "CHECK ((VALUE <> ''::text))" }],
    };
    expect(createDomain(domain)).toBe(
      `CREATE DOMAIN "public"."d-om" AS text DEFAULT 'z'::text NOT NULL CONSTRAINT "d-om""check" CHECK ((VALUE <> ''::text));\n`,
    );
    expect(createDomain({ ...domain, notNull: false, default: null, checks: [] })).toBe(
      'CREATE DOMAIN "public"."d-om" AS text;\n',
    );
  });

  it("creates sequences, owns them by their column and sets their value", () => {
    expect(createSequence(sequence({ schema: "extra" }))).toBe(
      'CREATE SEQUENCE "extra"."ticket_seq" AS bigint START WITH 1000 INCREMENT BY 5 MINVALUE 1 MAXVALUE 9223372036854775807 CACHE 1;\n',
    );
    expect(createSequence(sequence({ cycle: true }))).toMatch(/ CACHE 1 CYCLE;\n$/);
    expect(sequenceOwnedBy(sequence())).toBeUndefined();
    expect(sequenceOwnedBy(sequence({ ownerTable: '"public"."Kinds"', ownerColumn: 'odd"col' }))).toBe(
      'ALTER SEQUENCE "public"."ticket_seq" OWNED BY "public"."Kinds"."odd""col";\n',
    );
    expect(setSequenceValue(sequence())).toBeUndefined();
    expect(setSequenceValue(sequence({ name: "it's", last: "1005" }))).toBe(
      `SELECT pg_catalog.setval('"public"."it''s"', 1005, true);\n`,
    );
  });

  it("creates a table with collations, generated, identity and default columns", () => {
    const t = table('we"ird sch', "Mixed Case", [
      column("Id", { type: "integer", typeOid: 23, identity: "d", notNull: true }),
      column("always", { type: "bigint", typeOid: 20, identity: "a", notNull: true }),
      column("sp ace", { default: "'x''y'::text", collation: '"pg_catalog"."C"' }),
      column("total", { type: "numeric", typeOid: 1700, generated: "s", default: "(coalesce(n, 0) * 2)" }),
      column('q"uote'),
    ]);
    expect(createTable(t)).toBe(
      [
        "",
        'CREATE TABLE "we""ird sch"."Mixed Case" (',
        '    "Id" integer GENERATED BY DEFAULT AS IDENTITY NOT NULL,',
        '    "always" bigint GENERATED ALWAYS AS IDENTITY NOT NULL,',
        `    "sp ace" text COLLATE "pg_catalog"."C" DEFAULT 'x''y'::text,`,
        '    "total" numeric GENERATED ALWAYS AS ((coalesce(n, 0) * 2)) STORED,',
        '    "q""uote" text',
        ");",
        "",
      ].join("\n"),
    );
    // An inheriting table names its parents and only the columns it defines itself.
    const child = table("public", "child", [column("id", { local: false }), column("extra")]);
    expect(createTable(child, ['"public"."parent"', '"s"."other"'])).toBe(
      '\nCREATE TABLE "public"."child" (\n    "extra" text\n) INHERITS ("public"."parent", "s"."other");\n',
    );
    // The data block carries every column but the stored generated one.
    expect(copyStart(t, copyColumns(t.columns))).toBe(
      '\nCOPY "we""ird sch"."Mixed Case" ("Id", "always", "sp ace", "q""uote") FROM stdin;\n',
    );
    expect(COPY_END).toBe("\\.\n");
    expect(setIdentityValue(t, t.columns[0] as Column, "42")).toBe(
      `SELECT pg_catalog.setval(pg_get_serial_sequence('"we""ird sch"."Mixed Case"', 'Id'), 42, true);\n`,
    );
  });

  it("adds constraints, indexes and views after the data", () => {
    expect(
      addConstraint({
        schema: "public",
        table: "Order Lines",
        name: 'fk "parent"',
        def: "FOREIGN KEY (parent_id) REFERENCES public.parents(id) ON DELETE CASCADE",
        contype: "f",
      }),
    ).toBe(
      'ALTER TABLE ONLY "public"."Order Lines" ADD CONSTRAINT "fk ""parent""" FOREIGN KEY (parent_id) REFERENCES public.parents(id) ON DELETE CASCADE;\n',
    );
    expect(
      addConstraint({
        schema: "public",
        table: "vehicles",
        name: "wheels_check",
        def: "CHECK ((wheels > 0))",
        contype: "c",
      }),
    ).toBe('ALTER TABLE "public"."vehicles" ADD CONSTRAINT "wheels_check" CHECK ((wheels > 0));\n');
    expect(createIndex("CREATE INDEX kinds_tstz_idx ON public.kinds USING btree (tstz DESC) WHERE b")).toBe(
      "CREATE INDEX kinds_tstz_idx ON public.kinds USING btree (tstz DESC) WHERE b;\n",
    );
    // pg_get_viewdef ends with a semicolon and may carry trailing whitespace: one semicolon is written.
    expect(
      createView({ schema: "public", name: "Happy Kinds", def: " SELECT id,\n    t\n   FROM public.kinds;  \n" }),
    ).toBe('CREATE VIEW "public"."Happy Kinds" AS\n SELECT id,\n    t\n   FROM public.kinds;\n');
    expect(createView({ schema: "public", name: "v", def: "SELECT 1" })).toBe(
      'CREATE VIEW "public"."v" AS\nSELECT 1;\n',
    );
    // A materialized view is created empty and refreshed at the end, if the source's held data.
    const mv = { schema: "public", name: "m v", def: " SELECT 1;", kind: "m", populated: "true" };
    expect(createView(mv)).toBe('CREATE MATERIALIZED VIEW "public"."m v" AS\n SELECT 1\n  WITH NO DATA;\n');
    expect(refreshView(mv)).toBe('REFRESH MATERIALIZED VIEW "public"."m v";\n');
    expect(refreshView({ ...mv, populated: "false" })).toBeUndefined();
    expect(refreshView({ schema: "public", name: "v", def: "SELECT 1", kind: "v" })).toBeUndefined();
  });
});
