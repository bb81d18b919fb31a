ALTER TABLE `machines` ADD `install_generation` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `machines` ADD `enrolled_generation` integer;--> statement-breakpoint
ALTER TABLE `machines` ADD `installed_at` integer;--> statement-breakpoint
ALTER TABLE `machines` ADD `conflicts` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `machines` ADD `reported` text;--> statement-breakpoint
-- Machines that enrolled before this migration keep booting their disk: their install counts as enrolled.
UPDATE `machines` SET `enrolled_generation` = 0 WHERE `state` NOT IN ('discovered', 'rejected', 'retired');
