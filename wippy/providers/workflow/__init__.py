"""``workflow.host``: durable workflows on an embedded SQLite journal."""
