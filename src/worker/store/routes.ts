/**
 * The demo store API: what a SaaS engineer replaces with their own tenant routes. Every handler uses
 * `c.get("db")`, which is bound to the resolved tenant's own database; reading products is public,
 * everything else needs a token of this tenant, and carts and orders belong to the token's subject.
 * Changing the catalogue also needs the `catalog:write` scope: any shopper has a token.
 */
import { and, asc, eq, gt, sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { AppError } from "../../shared/errors.ts";
import { requireTenantToken } from "../auth/middleware.ts";
import { requireTenantScope } from "../auth/scope.ts";
import { jsonBody, parseWith } from "../http/validate.ts";
import { translateDbError } from "../tenant-db/errors.ts";
import type { AppEnv, Db } from "../types.ts";
import { cartItems, carts, orderItems, orders, products } from "./schema.ts";

const uuidParam = z.object({ id: z.uuid() });
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  after: z.uuid().optional(),
});
const newProduct = z.strictObject({
  sku: z.string().trim().min(1).max(64),
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).optional(),
  priceCents: z.number().int().min(0).max(100_000_000),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .default("USD"),
  stock: z.number().int().min(0).max(1_000_000).default(0),
});
const newItem = z.strictObject({ productId: z.uuid(), quantity: z.number().int().min(1).max(1000) });
const newOrder = z.strictObject({ cartId: z.uuid() });

const productColumns = {
  id: products.id,
  sku: products.sku,
  name: products.name,
  description: products.description,
  priceCents: products.priceCents,
  currency: products.currency,
  stock: products.stock,
};

/** A path id that is not a UUID cannot name a record: 404, like any other unknown id. */
function idParam(value: Record<string, string>): string {
  const parsed = uuidParam.safeParse(value);
  if (!parsed.success) throw new AppError(404, "not_found", "No such record.");
  return parsed.data.id;
}

/** Runs database work, translating driver failures at this boundary. */
async function db<T>(work: () => Promise<T>, constraints?: Parameters<typeof translateDbError>[1]): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw translateDbError(error, constraints);
  }
}

async function cartView(database: Db, cartId: string, ownerSub: string) {
  const [cart] = await database
    .select({ id: carts.id, status: carts.status, createdAt: carts.createdAt })
    .from(carts)
    .where(and(eq(carts.id, cartId), eq(carts.ownerSub, ownerSub)));
  if (!cart) return undefined;
  const items = await database
    .select({
      productId: cartItems.productId,
      quantity: cartItems.quantity,
      name: products.name,
      priceCents: products.priceCents,
    })
    .from(cartItems)
    .innerJoin(products, eq(products.id, cartItems.productId))
    .where(eq(cartItems.cartId, cartId))
    .orderBy(asc(products.name));
  return { ...cart, items };
}

export const storeRoutes = new Hono<AppEnv>();
const auth = requireTenantToken();
const catalogWriter = requireTenantScope("catalog:write");

storeRoutes.get("/products", async (c) => {
  const query = parseWith(listQuery, c.req.query());
  const rows = await db(() =>
    c
      .get("db")
      .select(productColumns)
      .from(products)
      .where(query.after ? gt(products.id, query.after) : undefined)
      .orderBy(asc(products.id))
      .limit(query.limit),
  );
  const next = rows.length === query.limit ? rows.at(-1)?.id : undefined;
  return c.json({ items: rows, ...(next ? { next } : {}) });
});

storeRoutes.get("/products/:id", async (c) => {
  const id = idParam(c.req.param());
  const [row] = await db(() => c.get("db").select(productColumns).from(products).where(eq(products.id, id)));
  if (!row) throw new AppError(404, "not_found", "No such product.");
  return c.json(row);
});

storeRoutes.post("/products", auth, catalogWriter, async (c) => {
  const body = await jsonBody(c, newProduct);
  const [row] = await db(() => c.get("db").insert(products).values(body).returning(productColumns));
  return c.json(row, 201);
});

storeRoutes.post("/carts", auth, async (c) => {
  const [row] = await db(() =>
    c
      .get("db")
      .insert(carts)
      .values({ ownerSub: c.get("claims").sub })
      .returning({ id: carts.id, status: carts.status, createdAt: carts.createdAt }),
  );
  return c.json({ ...row, items: [] }, 201);
});

storeRoutes.get("/carts/:id", auth, async (c) => {
  const id = idParam(c.req.param());
  const cart = await db(() => cartView(c.get("db"), id, c.get("claims").sub));
  if (!cart) throw new AppError(404, "not_found", "No such cart.");
  return c.json(cart);
});

storeRoutes.post("/carts/:id/items", auth, async (c) => {
  const id = idParam(c.req.param());
  const body = await jsonBody(c, newItem);
  const sub = c.get("claims").sub;
  const database = c.get("db");
  // One statement: the item is added only to an open cart of this subject, and adds up on repeat.
  const added = await db(
    () =>
      database.execute(sql`
        INSERT INTO ${cartItems} (cart_id, product_id, quantity)
        SELECT ${carts.id}, ${body.productId}, ${body.quantity} FROM ${carts}
        WHERE ${carts.id} = ${id} AND ${carts.ownerSub} = ${sub} AND ${carts.status} = 'open'
        ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = ${cartItems.quantity} + excluded.quantity
        RETURNING product_id`),
    {
      cart_items_product_id_products_id_fk: new AppError(422, "validation_failed", "No such product.", {
        extras: { errors: [{ path: "productId", message: "No such product" }] },
      }),
      cart_items_quantity_check: new AppError(422, "validation_failed", "At most 1000 of one product per cart.", {
        extras: { errors: [{ path: "quantity", message: "Too many" }] },
      }),
    },
  );
  if (added.rows.length === 0) {
    const cart = await db(() => cartView(database, id, sub));
    if (!cart) throw new AppError(404, "not_found", "No such cart.");
    throw new AppError(409, "cart_closed", "This cart has already been ordered.");
  }
  const cart = await db(() => cartView(database, id, sub));
  return c.json(cart, 201);
});

storeRoutes.post("/orders", auth, async (c) => {
  const { cartId } = await jsonBody(c, newOrder);
  const sub = c.get("claims").sub;
  const orderId = crypto.randomUUID();
  const database = c.get("db");
  const orderExists = sql`EXISTS (SELECT 1 FROM ${orders} WHERE ${orders.id} = ${orderId})`;
  // Checkout is one db.batch: one HTTP round trip, one transaction. A stock check failing rolls back all.
  const [state, created] = await db(
    () =>
      database.batch([
        database.execute(sql`
          SELECT c.status, count(ci.product_id)::int AS items FROM ${carts} c
          LEFT JOIN ${cartItems} ci ON ci.cart_id = c.id
          WHERE c.id = ${cartId} AND c.owner_sub = ${sub} GROUP BY c.status`),
        database.execute(sql`
          INSERT INTO ${orders} (id, cart_id, owner_sub, total_cents, currency)
          SELECT ${orderId}, c.id, c.owner_sub, sum(ci.quantity * p.price_cents), min(p.currency)
          FROM ${carts} c JOIN ${cartItems} ci ON ci.cart_id = c.id JOIN ${products} p ON p.id = ci.product_id
          WHERE c.id = ${cartId} AND c.owner_sub = ${sub} AND c.status = 'open'
          GROUP BY c.id, c.owner_sub
          RETURNING id, cart_id AS "cartId", total_cents AS "totalCents", currency, status, created_at AS "createdAt"`),
        database.execute(sql`
          INSERT INTO ${orderItems} (order_id, product_id, quantity, unit_price_cents)
          SELECT ${orderId}, ci.product_id, ci.quantity, p.price_cents
          FROM ${cartItems} ci JOIN ${products} p ON p.id = ci.product_id
          WHERE ci.cart_id = ${cartId} AND ${orderExists}`),
        database.execute(sql`
          UPDATE ${products} SET stock = ${products.stock} - ci.quantity
          FROM ${cartItems} ci WHERE ci.cart_id = ${cartId} AND ci.product_id = ${products.id} AND ${orderExists}`),
        database.execute(sql`UPDATE ${carts} SET status = 'ordered' WHERE ${carts.id} = ${cartId} AND ${orderExists}`),
      ]),
    { products_stock_check: new AppError(409, "insufficient_stock", "Not enough stock for an item in the cart.") },
  );
  const cart = state.rows[0] as { status: string; items: number } | undefined;
  if (!cart) throw new AppError(404, "not_found", "No such cart.");
  if (cart.status !== "open") throw new AppError(409, "cart_closed", "This cart has already been ordered.");
  if (cart.items === 0 || created.rows.length === 0) throw new AppError(422, "cart_empty", "The cart has no items.");
  return c.json({ ...created.rows[0] }, 201);
});

storeRoutes.get("/orders/:id", auth, async (c) => {
  const id = idParam(c.req.param());
  const database = c.get("db");
  const [[order], items] = await db(() =>
    database.batch([
      database
        .select({
          id: orders.id,
          cartId: orders.cartId,
          totalCents: orders.totalCents,
          currency: orders.currency,
          status: orders.status,
          createdAt: orders.createdAt,
        })
        .from(orders)
        .where(and(eq(orders.id, id), eq(orders.ownerSub, c.get("claims").sub))),
      database
        .select({
          productId: orderItems.productId,
          quantity: orderItems.quantity,
          unitPriceCents: orderItems.unitPriceCents,
        })
        .from(orderItems)
        .innerJoin(orders, eq(orders.id, orderItems.orderId))
        .where(and(eq(orderItems.orderId, id), eq(orders.ownerSub, c.get("claims").sub))),
    ]),
  );
  if (!order) throw new AppError(404, "not_found", "No such order.");
  return c.json({ ...order, items });
});
