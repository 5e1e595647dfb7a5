ALTER TABLE `inbound_messages` ADD `spf` text;--> statement-breakpoint
ALTER TABLE `inbound_messages` ADD `dkim` text;--> statement-breakpoint
ALTER TABLE `inbound_messages` ADD `dmarc` text;--> statement-breakpoint
ALTER TABLE `inbound_messages` ADD `authentication_results` text;