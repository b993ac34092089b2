CREATE TABLE `cluster_settings` (
	`id` tinyint unsigned NOT NULL DEFAULT 1,
	`cluster_ip` varchar(45) NOT NULL,
	`cluster_ip_prefix` tinyint unsigned NOT NULL,
	`cluster_ip_device` varchar(15) NOT NULL,
	`test_ip` varchar(45),
	`panel_port` smallint unsigned NOT NULL DEFAULT 8080,
	`fence_timeout_ms` int unsigned NOT NULL DEFAULT 5000,
	`storage_timeout_ms` int unsigned NOT NULL DEFAULT 5000,
	`reserve_nodes` json NOT NULL,
	`failback` boolean NOT NULL DEFAULT false,
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `cluster_settings_id` PRIMARY KEY(`id`),
	CONSTRAINT `cluster_settings_singleton` CHECK(`cluster_settings`.`id` = 1),
	CONSTRAINT `cluster_settings_prefix` CHECK(`cluster_settings`.`cluster_ip_prefix` between 1 and 128),
	CONSTRAINT `cluster_settings_panel_port` CHECK(`cluster_settings`.`panel_port` > 0)
);
--> statement-breakpoint
CREATE TABLE `incidents` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`actor` varchar(128) NOT NULL,
	`kind` varchar(64) NOT NULL,
	`severity` enum('info','warning','error') NOT NULL DEFAULT 'info',
	`nodeid` int unsigned,
	`vm` varchar(64),
	`summary` varchar(512) NOT NULL,
	`reason` varchar(2048) NOT NULL,
	`phases` json,
	CONSTRAINT `incidents_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `nodes` (
	`nodeid` int unsigned NOT NULL,
	`name` varchar(64) NOT NULL,
	`address` varchar(45) NOT NULL,
	`prio` int NOT NULL DEFAULT 0,
	`replication` boolean NOT NULL DEFAULT true,
	`maintenance` boolean NOT NULL DEFAULT false,
	`reserve` boolean NOT NULL DEFAULT false,
	`status` enum('leader','member','network_isolation','storage_isolation','full_failure','excluded','network_unstable','unknown','offline') NOT NULL DEFAULT 'unknown',
	`last_seen` datetime(3),
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `nodes_nodeid` PRIMARY KEY(`nodeid`),
	CONSTRAINT `nodes_name_uq` UNIQUE(`name`),
	CONSTRAINT `nodes_address_uq` UNIQUE(`address`),
	CONSTRAINT `nodes_nodeid_positive` CHECK(`nodes`.`nodeid` > 0)
);
--> statement-breakpoint
CREATE TABLE `users` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`username` varchar(64) NOT NULL,
	`password_hash` varchar(255) NOT NULL,
	`role` enum('admin','viewer') NOT NULL DEFAULT 'viewer',
	`disabled` boolean NOT NULL DEFAULT false,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`last_login` datetime(3),
	CONSTRAINT `users_id` PRIMARY KEY(`id`),
	CONSTRAINT `users_username_uq` UNIQUE(`username`),
	CONSTRAINT `users_argon2id` CHECK(`users`.`password_hash` like '$argon2id$%')
);
--> statement-breakpoint
CREATE TABLE `vms` (
	`name` varchar(64) NOT NULL,
	`nodeid` int unsigned,
	`ram_mb` int unsigned NOT NULL,
	`vcpus` smallint unsigned NOT NULL,
	`disk_location` varchar(1024) NOT NULL,
	`storage` enum('network','local') NOT NULL,
	`ha` boolean NOT NULL DEFAULT true,
	`restart_priority` int NOT NULL DEFAULT 0,
	`state` enum('stopped','starting','running','stopping','failed','unknown') NOT NULL DEFAULT 'stopped',
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `vms_name` PRIMARY KEY(`name`),
	CONSTRAINT `vms_ram_positive` CHECK(`vms`.`ram_mb` > 0),
	CONSTRAINT `vms_vcpus_positive` CHECK(`vms`.`vcpus` > 0),
	CONSTRAINT `vms_local_not_ha` CHECK(`vms`.`storage` = 'network' or `vms`.`ha` = 0)
);
--> statement-breakpoint
ALTER TABLE `vms` ADD CONSTRAINT `vms_nodeid_nodes_nodeid_fk` FOREIGN KEY (`nodeid`) REFERENCES `nodes`(`nodeid`) ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX `incidents_at_idx` ON `incidents` (`at`);--> statement-breakpoint
CREATE INDEX `incidents_kind_idx` ON `incidents` (`kind`,`at`);--> statement-breakpoint
CREATE INDEX `vms_nodeid_idx` ON `vms` (`nodeid`);