CREATE TABLE `approval_rules` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`cluster_id` integer NOT NULL,
	`match_cidr` text,
	`match_manufacturer` text,
	`match_product` text,
	`match_serial_prefix` text,
	`role` text,
	`remaining` integer,
	`approved_count` integer DEFAULT 0 NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`cluster_id`) REFERENCES `clusters`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `approval_rules_name_unique` ON `approval_rules` (`name`);--> statement-breakpoint
CREATE TABLE `pre_registrations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`mac` text,
	`serial` text,
	`uuid` text,
	`cluster_id` integer NOT NULL,
	`hostname` text,
	`labels` text DEFAULT '{}' NOT NULL,
	`role` text DEFAULT 'auto' NOT NULL,
	`machine_id` integer,
	`used_at` integer,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`cluster_id`) REFERENCES `clusters`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `pre_registrations_mac` ON `pre_registrations` (`mac`);--> statement-breakpoint
CREATE INDEX `pre_registrations_serial` ON `pre_registrations` (`serial`);--> statement-breakpoint
CREATE INDEX `pre_registrations_uuid` ON `pre_registrations` (`uuid`);--> statement-breakpoint
ALTER TABLE `clusters` ADD `install_policy` text DEFAULT 'immediate' NOT NULL;--> statement-breakpoint
ALTER TABLE `machines` ADD `approved_by` text;--> statement-breakpoint
ALTER TABLE `machines` ADD `approved_before_enroll` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `machines` ADD `install_failed_at` integer;