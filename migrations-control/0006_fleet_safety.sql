ALTER TABLE "migration_runs" ADD COLUMN "force" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "migration_runs" ADD COLUMN "drops" jsonb;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "writes_paused_by" text;