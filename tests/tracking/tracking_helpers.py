"""Helpers shared by the tracking tests."""
from __future__ import annotations

import uuid


def unique(prefix: str) -> str:
    """A name no other test uses (tests share one MLflow store)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
