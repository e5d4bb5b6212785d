/**
 * drizzle-orm's `neon-http` driver through the gateway: the ORM the Worker uses must behave here
 * exactly as on Neon, down to value round-trips, batches as transactions and error causes.
 */
import { NeonDbError, neon } from "@neondatabase/serverless";
import { and, asc, count, DrizzleQueryError, desc, eq, gt, inArray, sql } from "drizzle-orm";
import { drizzle, type NeonHttpDatabase } from "drizzle-orm/neon-http";
import {
  bigint,
  boolean,
  integer,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  serial,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, dropTestDatabase, type TestDatabase, useGatewayForNeon } from "../support.ts";

const mood = pgEnum("mood", ["sad", "ok", "happy"]);

interface Meta {
  readonly nested?: { readonly a: readonly (number | string | null)[] };
  readonly [key: string]: unknown;
}

const items = pgTable("items", {
  id: serial("id").primaryKey(),
  name: text("name").notNull().unique("items_name_key"),
  qty: integer("qty").notNull().default(0),
  big: bigint("big", { mode: "bigint" }),
  bigNum: bigint("big_num", { mode: "number" }),
  price: numeric("price"),
  active: boolean("active").notNull().default(true),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  meta: jsonb("meta").$type<Meta>(),
  ref: uuid("ref"),
  tags: integer("tags").array(),
  mood: mood("mood"),
});

const ledger = pgTable("ledger", {
  id: serial("id").primaryKey(),
  itemId: integer("item_id")
    .notNull()
    .references(() => items.id),
  delta: integer("delta").notNull(),
});

type NewItem = typeof items.$inferInsert;

let database: TestDatabase;
let db: NeonHttpDatabase;

beforeAll(async () => {
  useGatewayForNeon();
  database = await createTestDatabase("drz");
  db = drizzle({ client: neon(database.url) });
  await db.execute(sql`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`);
  await db.execute(sql`CREATE TABLE items (
    id serial PRIMARY KEY,
    name text NOT NULL CONSTRAINT items_name_key UNIQUE,
    qty integer NOT NULL DEFAULT 0,
    big bigint,
    big_num bigint,
    price numeric,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    meta jsonb,
    ref uuid,
    tags integer[],
    mood mood
  )`);
  await db.execute(sql`CREATE TABLE ledger (
    id serial PRIMARY KEY,
    item_id integer NOT NULL REFERENCES items (id),
    delta integer NOT NULL
  )`);
});

afterAll(async () => {
  await dropTestDatabase(database);
});

const FULL: NewItem = {
  name: "héllo 🌍 'quoted' \"double\" \\ back",
  qty: 2147483647,
  big: 9223372036854775807n,
  bigNum: Number.MAX_SAFE_INTEGER,
  price: "12345678901234567890.123456789012345678901234567890",
  active: false,
  createdAt: new Date("2024-02-29T12:34:56.789Z"),
  meta: { nested: { a: [1, "two", null] }, "ü key": true, float: 1.5, empty: {} },
  ref: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
  tags: [1, -2, 2147483647, -2147483648],
  mood: "happy",
};

const MINIMAL: NewItem = { name: "minimal" };

/** The NeonDbError a drizzle failure carries (drizzle 0.45 wraps query errors). */
function neonCause(error: unknown): NeonDbError {
  expect(error).toBeInstanceOf(DrizzleQueryError);
  const cause = (error as DrizzleQueryError).cause;
  expect(cause).toBeInstanceOf(NeonDbError);
  return cause as NeonDbError;
}

async function countItems(): Promise<number> {
  const [row] = await db.select({ n: count() }).from(items);
  return row?.n ?? -1;
}

describe("drizzle neon-http through the gateway", () => {
  it("inserts … returning every type exactly as written", async () => {
    const [full, minimal] = await db.insert(items).values([FULL, MINIMAL]).returning();
    expect(full).toEqual({ id: expect.any(Number), ...FULL });
    expect(typeof full?.big).toBe("bigint");
    expect(full?.createdAt).toBeInstanceOf(Date);
    expect(minimal).toEqual({
      id: expect.any(Number),
      name: "minimal",
      qty: 0,
      big: null,
      bigNum: null,
      price: null,
      active: true,
      createdAt: expect.any(Date),
      meta: null,
      ref: null,
      tags: null,
      mood: null,
    });
  });

  it("selects the same values back with where and orderBy", async () => {
    const [row] = await db.select().from(items).where(eq(items.ref, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
    expect(row).toEqual({ id: expect.any(Number), ...FULL });

    // The server agrees on the exact stored text of the lossy-looking types.
    const [text] = await db
      .select({
        big: sql<string>`${items.big}::text`,
        price: sql<string>`${items.price}::text`,
        createdAt: sql<string>`to_char(${items.createdAt} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS')`,
        tags: sql<string>`${items.tags}::text`,
      })
      .from(items)
      .where(eq(items.name, FULL.name));
    expect(text).toEqual({
      big: "9223372036854775807",
      price: "12345678901234567890.123456789012345678901234567890",
      createdAt: "2024-02-29T12:34:56.789",
      tags: "{1,-2,2147483647,-2147483648}",
    });

    await db.insert(items).values([
      { name: "order-a", qty: 3, mood: "sad" },
      { name: "order-b", qty: 1, mood: "ok" },
      { name: "order-c", qty: 2, mood: "sad" },
    ]);
    const sad = await db
      .select({ name: items.name, qty: items.qty })
      .from(items)
      .where(and(eq(items.mood, "sad"), gt(items.qty, 0)))
      .orderBy(desc(items.qty));
    expect(sad).toEqual([
      { name: "order-a", qty: 3 },
      { name: "order-c", qty: 2 },
    ]);
    const some = await db
      .select({ name: items.name })
      .from(items)
      .where(inArray(items.name, ["order-b", "order-c", "absent"]))
      .orderBy(asc(items.name));
    expect(some).toEqual([{ name: "order-b" }, { name: "order-c" }]);
  });

  it("queries jsonb and arrays on the server", async () => {
    const rows = await db
      .select({ name: items.name })
      .from(items)
      .where(sql`${items.meta} @> ${JSON.stringify({ "ü key": true })}::jsonb AND ${items.tags} @> ARRAY[-2]`);
    expect(rows).toEqual([{ name: FULL.name }]);
  });

  it("updates … returning", async () => {
    const updated = await db
      .update(items)
      .set({ qty: sql`${items.qty} + 10`, meta: { replaced: [true] }, big: -9223372036854775808n })
      .where(eq(items.name, "order-b"))
      .returning({ qty: items.qty, meta: items.meta, big: items.big });
    expect(updated).toEqual([{ qty: 11, meta: { replaced: [true] }, big: -9223372036854775808n }]);
    const [row] = await db.select({ qty: items.qty, big: items.big }).from(items).where(eq(items.name, "order-b"));
    expect(row).toEqual({ qty: 11, big: -9223372036854775808n });
  });

  it("deletes … returning", async () => {
    const before = await countItems();
    const deleted = await db.delete(items).where(eq(items.name, "order-c")).returning({ name: items.name });
    expect(deleted).toEqual([{ name: "order-c" }]);
    expect(await countItems()).toBe(before - 1);
    expect(await db.delete(items).where(eq(items.name, "order-c")).returning()).toEqual([]);
  });

  it("commits a batch as one transaction", async () => {
    const results = await db.batch([
      db.insert(items).values({ name: "batch-1", qty: 5 }).returning({ id: items.id }),
      db.update(items).set({ qty: 6 }).where(eq(items.name, "batch-1")).returning({ qty: items.qty }),
      db.select({ name: items.name, qty: items.qty }).from(items).where(eq(items.name, "batch-1")),
    ]);
    const [[inserted], updated, selected] = results;
    expect(inserted?.id).toBeTypeOf("number");
    expect(updated).toEqual([{ qty: 6 }]);
    expect(selected).toEqual([{ name: "batch-1", qty: 6 }]);
    const [row] = await db.select({ qty: items.qty }).from(items).where(eq(items.name, "batch-1"));
    expect(row).toEqual({ qty: 6 });
  });

  it("rolls a whole batch back when one statement fails", async () => {
    const itemsBefore = await countItems();
    const [ledgerBefore] = await db.select({ n: count() }).from(ledger);
    const [target] = await db.select({ id: items.id }).from(items).where(eq(items.name, "batch-1"));
    const failing = db.batch([
      db.insert(items).values({ name: "rolled-back" }),
      db.insert(ledger).values({ itemId: target?.id ?? -1, delta: 1 }),
      db.update(items).set({ qty: 999 }).where(eq(items.name, "batch-1")),
      db.insert(items).values({ name: "minimal" }),
    ]);
    const error = await failing.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    // drizzle 0.45 passes a batch's failure through unwrapped (single queries get DrizzleQueryError).
    const cause = error instanceof NeonDbError ? error : neonCause(error);
    expect(cause.code).toBe("23505");

    expect(await countItems()).toBe(itemsBefore);
    expect(await db.select({ n: count() }).from(ledger)).toEqual([ledgerBefore]);
    expect(await db.select().from(items).where(eq(items.name, "rolled-back"))).toEqual([]);
    const [row] = await db.select({ qty: items.qty }).from(items).where(eq(items.name, "batch-1"));
    expect(row).toEqual({ qty: 6 });
  });

  it("surfaces a unique violation as code 23505 on the cause", async () => {
    const error = await db
      .insert(items)
      .values({ name: "minimal" })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const cause = neonCause(error);
    expect(cause).toMatchObject({
      code: "23505",
      constraint: "items_name_key",
      table: "items",
      detail: "Key (name)=(minimal) already exists.",
    });
  });

  it("surfaces a foreign-key violation and an invalid enum value with their codes", async () => {
    const fk = await db
      .insert(ledger)
      .values({ itemId: -42, delta: 1 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(neonCause(fk)).toMatchObject({ code: "23503", constraint: "ledger_item_id_fkey" });
    const badEnum = await db
      .insert(items)
      .values({ name: "bad-enum", mood: "furious" as "sad" })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(neonCause(badEnum).code).toBe("22P02");
  });
});
