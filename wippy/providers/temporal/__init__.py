"""``temporal.client`` and ``temporal.worker``: Lua workflows on a real Temporal server."""
