CREATE TABLE `file_sync` (
	`nodeid` int unsigned NOT NULL,
	`file_set` varchar(64) NOT NULL DEFAULT 'mgrfiles',
	`last_run_at` datetime(3) NOT NULL,
	`last_ok_at` datetime(3),
	`ok` boolean NOT NULL,
	`error` varchar(2048),
	`files_changed` int unsigned NOT NULL DEFAULT 0,
	`duration_ms` int unsigned NOT NULL DEFAULT 0,
	CONSTRAINT `file_sync_nodeid` PRIMARY KEY(`nodeid`)
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`id_hash` varchar(64) NOT NULL,
	`user_id` int unsigned NOT NULL,
	`csrf` varchar(64) NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`last_seen` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `sessions_id_hash` PRIMARY KEY(`id_hash`)
);
--> statement-breakpoint
ALTER TABLE `sessions` ADD CONSTRAINT `sessions_user_id_users_id_fk` FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `sessions_user_idx` ON `sessions` (`user_id`);--> statement-breakpoint
CREATE INDEX `sessions_last_seen_idx` ON `sessions` (`last_seen`);