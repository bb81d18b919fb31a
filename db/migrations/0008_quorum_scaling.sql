ALTER TABLE `clusters` ADD `ready_servers_at_ok` integer;--> statement-breakpoint
UPDATE `clusters` SET `ready_servers_at_ok` = `servers` WHERE `formed_at` IS NOT NULL;