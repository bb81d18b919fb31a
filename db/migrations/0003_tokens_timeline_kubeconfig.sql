CREATE TABLE `admin_tokens` (
	`name` text PRIMARY KEY NOT NULL,
	`sha256` text NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`last_used_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `admin_tokens_sha256_unique` ON `admin_tokens` (`sha256`);--> statement-breakpoint
CREATE TABLE `timeline_entries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`machine_id` integer,
	`source_ip` text,
	`kind` text NOT NULL,
	`detail` text NOT NULL,
	`count` integer DEFAULT 1 NOT NULL,
	`first_at` integer NOT NULL,
	`last_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `timeline_machine` ON `timeline_entries` (`machine_id`,`id`);--> statement-breakpoint
CREATE INDEX `timeline_ip` ON `timeline_entries` (`source_ip`,`id`);--> statement-breakpoint
ALTER TABLE `clusters` ADD `admin_kubeconfig` text;--> statement-breakpoint
ALTER TABLE `clusters` ADD `kubeconfig_at` integer;--> statement-breakpoint
INSERT OR IGNORE INTO `admin_tokens` (`name`, `sha256`, `created_at`, `created_by`) SELECT 'initial', `value`, CAST(strftime('%s','now') AS INTEGER) * 1000, 'system' FROM `settings` WHERE `key` = 'admin_token_sha256';--> statement-breakpoint
DELETE FROM `settings` WHERE `key` = 'admin_token_sha256';
