"""In-product alerting: rules over runs, the queue and the workers (`/api/v1/alerts`),
evaluated by the leader of role "alerts", with notifications through notifier plugins
(`webhook`, `email`), deduplicated, resolved when the condition clears, audited."""
