CREATE TABLE `attachments` (
	`id` integer PRIMARY KEY NOT NULL,
	`inbound_message_id` integer,
	`owner_type` text NOT NULL,
	`owner_id` integer NOT NULL,
	`filename` text NOT NULL,
	`content_type` text NOT NULL,
	`size` integer NOT NULL,
	`sha256` text NOT NULL,
	`content` blob NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`inbound_message_id`) REFERENCES `inbound_messages`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `attachments_owner` ON `attachments` (`owner_type`,`owner_id`);--> statement-breakpoint
CREATE TABLE `deliveries` (
	`id` integer PRIMARY KEY NOT NULL,
	`inbound_message_id` integer NOT NULL,
	`recipient` text NOT NULL,
	`key` text,
	`stage` text NOT NULL,
	`status` text NOT NULL,
	`reason_code` text,
	`reason` text,
	`handler` text,
	`target_type` text,
	`target_id` integer,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`inbound_message_id`) REFERENCES `inbound_messages`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "deliveries_status" CHECK("deliveries"."status" in ('processed', 'rejected', 'ignored', 'duplicate', 'failed'))
);
--> statement-breakpoint
CREATE INDEX `deliveries_inbound_message` ON `deliveries` (`inbound_message_id`);--> statement-breakpoint
CREATE INDEX `deliveries_key_status` ON `deliveries` (`key`,`status`);--> statement-breakpoint
CREATE TABLE `inbound_messages` (
	`id` integer PRIMARY KEY NOT NULL,
	`received_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`ingress` text NOT NULL,
	`remote_address` text,
	`helo` text,
	`mail_from` text,
	`rcpt_to` text NOT NULL,
	`message_id` text,
	`from_address` text,
	`subject` text,
	`size` integer NOT NULL,
	`sha256` text,
	`raw` blob,
	`status` text NOT NULL,
	`reason_code` text,
	`reason` text,
	`handler` text,
	`target_type` text,
	`target_id` integer,
	`smtp_reply` text,
	`processed_at` text,
	CONSTRAINT "inbound_messages_status" CHECK("inbound_messages"."status" in ('processed', 'rejected', 'ignored', 'duplicate', 'failed'))
);
--> statement-breakpoint
CREATE INDEX `inbound_messages_message_id` ON `inbound_messages` (`message_id`);--> statement-breakpoint
CREATE INDEX `inbound_messages_sha256` ON `inbound_messages` (`sha256`);--> statement-breakpoint
CREATE INDEX `inbound_messages_status` ON `inbound_messages` (`status`);--> statement-breakpoint
CREATE TABLE `issues` (
	`id` integer PRIMARY KEY NOT NULL,
	`project_id` integer NOT NULL,
	`iid` integer NOT NULL,
	`title` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`author_id` integer,
	`external_author` text,
	`confidential` integer DEFAULT false NOT NULL,
	`state` text DEFAULT 'opened' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null,
	CONSTRAINT "issues_state" CHECK("issues"."state" in ('opened', 'closed'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `issues_project_iid` ON `issues` (`project_id`,`iid`);--> statement-breakpoint
CREATE TABLE `merge_requests` (
	`id` integer PRIMARY KEY NOT NULL,
	`project_id` integer NOT NULL,
	`iid` integer NOT NULL,
	`title` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`source_branch` text NOT NULL,
	`target_branch` text NOT NULL,
	`author_id` integer,
	`state` text DEFAULT 'opened' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null,
	CONSTRAINT "merge_requests_state" CHECK("merge_requests"."state" in ('opened', 'closed', 'merged'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `merge_requests_project_iid` ON `merge_requests` (`project_id`,`iid`);--> statement-breakpoint
CREATE TABLE `notes` (
	`id` integer PRIMARY KEY NOT NULL,
	`project_id` integer NOT NULL,
	`noteable_type` text NOT NULL,
	`noteable_id` integer NOT NULL,
	`author_id` integer,
	`external_author` text,
	`body` text NOT NULL,
	`discussion_id` text,
	`inbound_message_id` integer,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`inbound_message_id`) REFERENCES `inbound_messages`(`id`) ON UPDATE no action ON DELETE set null,
	CONSTRAINT "notes_noteable_type" CHECK("notes"."noteable_type" in ('Issue', 'MergeRequest'))
);
--> statement-breakpoint
CREATE INDEX `notes_noteable` ON `notes` (`noteable_type`,`noteable_id`);--> statement-breakpoint
CREATE TABLE `project_members` (
	`id` integer PRIMARY KEY NOT NULL,
	`project_id` integer NOT NULL,
	`user_id` integer NOT NULL,
	`access_level` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "project_members_access_level" CHECK("project_members"."access_level" in (10, 20, 30, 40, 50))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `project_members_project_user` ON `project_members` (`project_id`,`user_id`);--> statement-breakpoint
CREATE TABLE `projects` (
	`id` integer PRIMARY KEY NOT NULL,
	`path` text NOT NULL,
	`name` text NOT NULL,
	`visibility` text DEFAULT 'private' NOT NULL,
	`service_desk_enabled` integer DEFAULT false NOT NULL,
	`service_desk_key` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	CONSTRAINT "projects_visibility" CHECK("projects"."visibility" in ('private', 'internal', 'public'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `projects_path_unique` ON `projects` (`path`);--> statement-breakpoint
CREATE TABLE `sent_notifications` (
	`id` integer PRIMARY KEY NOT NULL,
	`reply_key` text NOT NULL,
	`project_id` integer NOT NULL,
	`recipient_id` integer NOT NULL,
	`noteable_type` text NOT NULL,
	`noteable_id` integer NOT NULL,
	`in_reply_to_discussion_id` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`recipient_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "sent_notifications_noteable_type" CHECK("sent_notifications"."noteable_type" in ('Issue', 'MergeRequest'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sent_notifications_reply_key_unique` ON `sent_notifications` (`reply_key`);--> statement-breakpoint
CREATE TABLE `user_emails` (
	`id` integer PRIMARY KEY NOT NULL,
	`user_id` integer NOT NULL,
	`email` text NOT NULL,
	`verified` integer DEFAULT true NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `user_emails_user_email` ON `user_emails` (`user_id`,lower("email"));--> statement-breakpoint
CREATE INDEX `user_emails_email` ON `user_emails` (lower("email"));--> statement-breakpoint
CREATE TABLE `users` (
	`id` integer PRIMARY KEY NOT NULL,
	`username` text NOT NULL,
	`name` text NOT NULL,
	`email` text NOT NULL,
	`incoming_email_token` text NOT NULL,
	`state` text DEFAULT 'active' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	CONSTRAINT "users_state" CHECK("users"."state" in ('active', 'blocked'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_username_unique` ON `users` (`username`);--> statement-breakpoint
CREATE UNIQUE INDEX `users_incoming_email_token_unique` ON `users` (`incoming_email_token`);