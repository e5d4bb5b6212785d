/** Which down-file statements destroy data, and what: the list a rollback exports first and a dry run shows. */
import { describe, expect, it } from "vitest";
import { describeDrop, destructiveTargets, dropsOf } from "../../../src/shared/destructive-sql.ts";

const t = (statement: string) => destructiveTargets("m", statement).map(({ kind, object }) => `${kind} ${object}`);

describe("destructiveTargets", () => {
  it("finds dropped tables, columns, schemas, sequences, materialized views and truncated tables", () => {
    expect(t('ALTER TABLE "orders" DROP COLUMN "note";')).toEqual(["column orders.note"]);
    expect(t('ALTER TABLE IF EXISTS ONLY "public"."orders" DROP COLUMN IF EXISTS note, DROP total')).toEqual([
      "column public.orders.note",
      "column public.orders.total",
    ]);
    expect(t('DROP TABLE IF EXISTS "carts", public."Order Lines" CASCADE')).toEqual([
      "table carts",
      "table public.Order Lines",
    ]);
    expect(t("drop schema reports")).toEqual(["schema reports"]);
    expect(t("DROP MATERIALIZED VIEW sales_mv")).toEqual(["materialized view sales_mv"]);
    expect(t("DROP SEQUENCE ticket_seq")).toEqual(["sequence ticket_seq"]);
    expect(t("TRUNCATE TABLE ONLY carts, cart_items")).toEqual(["rows carts", "rows cart_items"]);
  });

  it("leaves out what loses no data, and comments", () => {
    expect(t('DROP INDEX "order_items_product_idx";')).toEqual([]);
    expect(t('ALTER TABLE "orders" DROP CONSTRAINT "orders_cart_id_key"')).toEqual([]);
    expect(t('ALTER TABLE "orders" ALTER COLUMN "note" DROP NOT NULL')).toEqual([]);
    expect(t('ALTER TABLE "orders" ALTER COLUMN "note" DROP DEFAULT')).toEqual([]);
    expect(t("DROP VIEW open_carts")).toEqual([]);
    expect(t("-- DROP TABLE carts\nSELECT 1")).toEqual([]);
  });

  it("flags a DROP … CASCADE it cannot name, since it may take data with it", () => {
    expect(t("DROP TYPE mood CASCADE")).toEqual(["cascade DROP TYPE mood CASCADE"]);
  });

  it("lists a plan's drops in the order the down files run, each naming its migration", () => {
    const drops = dropsOf([
      { name: "0003_idx", down: ['DROP INDEX "i"'] },
      { name: "0002_note", down: ['ALTER TABLE "orders" DROP COLUMN "note"'] },
      { name: "0001_none", down: null },
    ]);
    expect(drops.map(describeDrop)).toEqual(["column orders.note (0002_note)"]);
  });
});
