"""The one place the app reads the time, so tests can move it instead of sleeping."""

from datetime import UTC, datetime


def now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)
