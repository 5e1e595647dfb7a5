ALTER TABLE `projects` ADD `service_desk_custom_email` text;--> statement-breakpoint
CREATE UNIQUE INDEX `projects_service_desk_custom_email` ON `projects` (`service_desk_custom_email`);