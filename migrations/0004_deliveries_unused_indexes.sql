DROP INDEX `deliveries_key_status`;--> statement-breakpoint
DROP INDEX `deliveries_destination_status`;