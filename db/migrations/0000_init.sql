CREATE TABLE `audit_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`source_ip` text,
	`action` text NOT NULL,
	`machine_id` integer,
	`cluster_id` integer,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `audit_machine` ON `audit_events` (`machine_id`);--> statement-breakpoint
CREATE INDEX `audit_at` ON `audit_events` (`at`);--> statement-breakpoint
CREATE TABLE `clusters` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`servers` integer DEFAULT 1 NOT NULL,
	`registration_address` text,
	`k3s_version` text NOT NULL,
	`is_default` integer DEFAULT false NOT NULL,
	`installer` text NOT NULL,
	`labels` text DEFAULT '{}' NOT NULL,
	`taints` text DEFAULT '[]' NOT NULL,
	`hostname_pattern` text DEFAULT 'node-{mac}' NOT NULL,
	`match_cidrs` text DEFAULT '[]' NOT NULL,
	`user_data_template` text,
	`server_token` text NOT NULL,
	`agent_token` text NOT NULL,
	`ca_hash` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `clusters_name_unique` ON `clusters` (`name`);--> statement-breakpoint
CREATE TABLE `machines` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`mac` text NOT NULL,
	`uuid` text,
	`serial` text,
	`manufacturer` text,
	`product` text,
	`arch` text,
	`platform` text,
	`last_ip` text,
	`hostname` text,
	`state` text DEFAULT 'discovered' NOT NULL,
	`role` text,
	`cluster_id` integer,
	`labels` text DEFAULT '{}' NOT NULL,
	`facts` text,
	`credential_generation` integer DEFAULT 0 NOT NULL,
	`role_assigned_at` integer,
	`k3s_started_at` integer,
	`ready_at` integer,
	`ca_hash` text,
	`split_brain_risk` integer DEFAULT false NOT NULL,
	`progress_token_hash` text,
	`first_seen_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	`state_changed_at` integer NOT NULL,
	FOREIGN KEY (`cluster_id`) REFERENCES `clusters`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `machines_mac_unique` ON `machines` (`mac`);--> statement-breakpoint
CREATE INDEX `machines_cluster_role` ON `machines` (`cluster_id`,`role`);--> statement-breakpoint
CREATE INDEX `machines_state` ON `machines` (`state`);--> statement-breakpoint
CREATE TABLE `node_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`machine_id` integer NOT NULL,
	`at` integer NOT NULL,
	`source` text NOT NULL,
	`type` text NOT NULL,
	`detail` text,
	`ca_hash` text,
	FOREIGN KEY (`machine_id`) REFERENCES `machines`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `node_events_machine` ON `node_events` (`machine_id`,`at`);--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `signing_keys` (
	`kid` text PRIMARY KEY NOT NULL,
	`public_jwk` text NOT NULL,
	`created_at` integer NOT NULL,
	`retired_at` integer
);
--> statement-breakpoint
CREATE TABLE `used_tokens` (
	`jti` text PRIMARY KEY NOT NULL,
	`machine_id` integer NOT NULL,
	`used_at` integer NOT NULL,
	`expires_at` integer NOT NULL
);
