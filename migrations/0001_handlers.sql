CREATE TABLE `issue_assignees` (
	`id` integer PRIMARY KEY NOT NULL,
	`issue_id` integer NOT NULL,
	`user_id` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`issue_id`) REFERENCES `issues`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `issue_assignees_issue_user` ON `issue_assignees` (`issue_id`,`user_id`);--> statement-breakpoint
CREATE TABLE `issue_email_participants` (
	`id` integer PRIMARY KEY NOT NULL,
	`issue_id` integer NOT NULL,
	`email` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`issue_id`) REFERENCES `issues`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `issue_email_participants_issue_email` ON `issue_email_participants` (`issue_id`,lower("email"));--> statement-breakpoint
CREATE TABLE `issue_emails` (
	`id` integer PRIMARY KEY NOT NULL,
	`issue_id` integer NOT NULL,
	`email_message_id` text NOT NULL,
	FOREIGN KEY (`issue_id`) REFERENCES `issues`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `issue_emails_message_id` ON `issue_emails` (`email_message_id`);--> statement-breakpoint
CREATE TABLE `issue_labels` (
	`id` integer PRIMARY KEY NOT NULL,
	`issue_id` integer NOT NULL,
	`label` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`issue_id`) REFERENCES `issues`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `issue_labels_issue_label` ON `issue_labels` (`issue_id`,`label`);--> statement-breakpoint
CREATE TABLE `subscriptions` (
	`id` integer PRIMARY KEY NOT NULL,
	`user_id` integer NOT NULL,
	`noteable_type` text NOT NULL,
	`noteable_id` integer NOT NULL,
	`subscribed` integer NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `subscriptions_user_noteable` ON `subscriptions` (`user_id`,`noteable_type`,`noteable_id`);--> statement-breakpoint
ALTER TABLE `deliveries` ADD `source` text;--> statement-breakpoint
ALTER TABLE `deliveries` ADD `destination` text;--> statement-breakpoint
CREATE INDEX `deliveries_destination_status` ON `deliveries` (`destination`,`status`);--> statement-breakpoint
ALTER TABLE `notes` ADD `system` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `projects` ADD `service_desk_reopen` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `projects` ADD `service_desk_cc_participants` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `projects` ADD `default_branch` text DEFAULT 'main' NOT NULL;--> statement-breakpoint
CREATE INDEX `projects_service_desk_key` ON `projects` (`service_desk_key`);