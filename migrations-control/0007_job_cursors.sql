CREATE TABLE "job_cursors" (
	"job" text PRIMARY KEY NOT NULL,
	"pass" text NOT NULL,
	"seq" integer DEFAULT 0 NOT NULL,
	"phase" text NOT NULL,
	"cursor" text,
	"progress" jsonb NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
