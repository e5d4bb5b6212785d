DROP INDEX "order_items_product_idx";
