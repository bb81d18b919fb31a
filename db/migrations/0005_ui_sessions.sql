CREATE TABLE `ui_sessions` (
	`id_sha256` text PRIMARY KEY NOT NULL,
	`token_name` text NOT NULL,
	`csrf_token` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `ui_sessions_expires` ON `ui_sessions` (`expires_at`);