ALTER TABLE `clusters` ADD `init_started_at` integer;--> statement-breakpoint
ALTER TABLE `machines` ADD `role_preference` text DEFAULT 'auto' NOT NULL;--> statement-breakpoint
ALTER TABLE `machines` ADD `seat_revoked_at` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `machines_one_init_per_cluster` ON `machines` (`cluster_id`) WHERE "machines"."role" = 'init';