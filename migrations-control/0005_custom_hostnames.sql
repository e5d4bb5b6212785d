ALTER TABLE "domains" ADD COLUMN "status" text DEFAULT 'active' NOT NULL;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "cf_id" text;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "ssl_status" text;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "validation_errors" jsonb;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "dns" jsonb;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "alerted" text;--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "checked_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "domains_poll_idx" ON "domains" USING btree ("status","checked_at");--> statement-breakpoint
ALTER TABLE "domains" ADD CONSTRAINT "domains_status_check" CHECK ("domains"."status" IN ('pending', 'active', 'moved', 'blocked', 'deleted', 'removing'));