CREATE TABLE "migration_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"target" text,
	"steps" integer,
	"dry_run" boolean DEFAULT false NOT NULL,
	"status" text NOT NULL,
	"concurrency" integer NOT NULL,
	"max_failures" integer NOT NULL,
	"phase" integer DEFAULT 0 NOT NULL,
	"phases" integer NOT NULL,
	"halt_reason" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "run_tenants" (
	"run_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"slug" text NOT NULL,
	"phase" integer NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"from_version" text,
	"to_version" text,
	"result" jsonb,
	"error" text,
	"queued_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"duration_ms" integer,
	CONSTRAINT "run_tenants_pkey" PRIMARY KEY("run_id","tenant_id")
);
--> statement-breakpoint
ALTER TABLE "run_tenants" ADD CONSTRAINT "run_tenants_run_id_migration_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."migration_runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_tenants" ADD CONSTRAINT "run_tenants_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "run_tenants_phase_idx" ON "run_tenants" USING btree ("run_id","phase","status");