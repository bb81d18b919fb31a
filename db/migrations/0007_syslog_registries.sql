CREATE TABLE `syslog_messages` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`machine_id` integer NOT NULL,
	`received_at` integer NOT NULL,
	`source_ip` text NOT NULL,
	`facility` integer NOT NULL,
	`severity` integer NOT NULL,
	`sent_at` text,
	`hostname` text,
	`app` text,
	`message` text NOT NULL,
	FOREIGN KEY (`machine_id`) REFERENCES `machines`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `syslog_machine` ON `syslog_messages` (`machine_id`,`id`);--> statement-breakpoint
ALTER TABLE `clusters` ADD `registries` text;