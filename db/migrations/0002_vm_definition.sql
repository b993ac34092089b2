ALTER TABLE `vms` ADD `ip` varchar(45);--> statement-breakpoint
ALTER TABLE `vms` ADD `definition_state` enum('pending','defined','failed') DEFAULT 'defined' NOT NULL;--> statement-breakpoint
ALTER TABLE `vms` ADD `definition_error` varchar(1024);--> statement-breakpoint
ALTER TABLE `vms` ADD `requested_nodeid` int unsigned;--> statement-breakpoint
ALTER TABLE `vms` ADD CONSTRAINT `vms_requested_nodeid_nodes_nodeid_fk` FOREIGN KEY (`requested_nodeid`) REFERENCES `nodes`(`nodeid`) ON DELETE set null ON UPDATE no action;