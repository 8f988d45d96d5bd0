"""Workflow IDs a start gets when it names none."""

from __future__ import annotations

import uuid


def new_workflow_id() -> str:
    """A fresh, unique workflow ID (32 hex digits)."""
    return uuid.uuid4().hex
