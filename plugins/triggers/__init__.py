"""What starts runs besides a person: cron schedules and webhooks."""
