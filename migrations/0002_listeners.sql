ALTER TABLE `inbound_messages` ADD `relay_address` text;--> statement-breakpoint
ALTER TABLE `inbound_messages` ADD `tls` text;