/**
 * The demo store: the tenant schema every tenant database gets. SaaS engineers replace it with their
 * own; `drizzle-kit generate` turns changes into migrations/ (see "Shipping a schema change").
 */
import { sql } from "drizzle-orm";
import { check, index, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const products = pgTable(
  "products",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    sku: text("sku").notNull().unique("products_sku_key"),
    name: text("name").notNull(),
    description: text("description"),
    priceCents: integer("price_cents").notNull(),
    currency: text("currency").notNull().default("USD"),
    stock: integer("stock").notNull().default(0),
    imageUrl: text("image_url"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [
    check("products_price_check", sql`${t.priceCents} >= 0`),
    check("products_stock_check", sql`${t.stock} >= 0`),
    check("products_currency_check", sql`${t.currency} ~ '^[A-Z]{3}$'`),
  ],
);

export const carts = pgTable(
  "carts",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    /** The token subject that owns the cart: other users of the same tenant cannot see it. */
    ownerSub: text("owner_sub").notNull(),
    status: text("status", { enum: ["open", "ordered"] })
      .notNull()
      .default("open"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [
    index("carts_owner_idx").on(t.ownerSub),
    check("carts_status_check", sql`${t.status} IN ('open', 'ordered')`),
  ],
);

export const cartItems = pgTable(
  "cart_items",
  {
    cartId: uuid("cart_id")
      .notNull()
      .references(() => carts.id, { onDelete: "cascade" }),
    productId: uuid("product_id")
      .notNull()
      .references(() => products.id),
    quantity: integer("quantity").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.cartId, t.productId], name: "cart_items_pkey" }),
    check("cart_items_quantity_check", sql`${t.quantity} > 0 AND ${t.quantity} <= 1000`),
  ],
);

export const orders = pgTable(
  "orders",
  {
    id: uuid("id").primaryKey(),
    cartId: uuid("cart_id")
      .notNull()
      .unique("orders_cart_id_key")
      .references(() => carts.id),
    ownerSub: text("owner_sub").notNull(),
    totalCents: integer("total_cents").notNull(),
    currency: text("currency").notNull(),
    status: text("status").notNull().default("placed"),
    note: text("note"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
  },
  (t) => [index("orders_owner_idx").on(t.ownerSub)],
);

export const orderItems = pgTable(
  "order_items",
  {
    orderId: uuid("order_id")
      .notNull()
      .references(() => orders.id, { onDelete: "cascade" }),
    productId: uuid("product_id")
      .notNull()
      .references(() => products.id),
    quantity: integer("quantity").notNull(),
    unitPriceCents: integer("unit_price_cents").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.orderId, t.productId], name: "order_items_pkey" }),
    index("order_items_product_idx").on(t.productId),
  ],
);
