"""Where an open app's stream starts reading the event log.

A reconnect resumes from the browser's Last-Event-ID. A page's first connection starts from
the newest event when the page was made, so an offer made between the page and its stream is
still heard; a page from the offline cache may be hours old, so its start is used only when
everything after it is recent (otherwise it would replay old offers as new alerts).
"""

from datetime import timedelta

import sqlalchemy as sa

from fieldapp import clock
from fieldapp.extensions import db
from fieldapp.models import Event

PAGE_START_MAX_AGE = timedelta(seconds=60)


def newest_id() -> int:
    """The newest event id: where a stream for a page rendered now starts."""
    return db.session.scalar(sa.select(sa.func.max(Event.id))) or 0


def start_id(resumed: int | None, page_start: int | None) -> int:
    """The id after which a stream catches up: Last-Event-ID, a fresh page's start, or now."""
    if resumed is not None:
        return resumed
    if page_start is None:
        return newest_id()
    first_after = db.session.scalar(
        sa.select(Event.created_at).where(Event.id > page_start).order_by(Event.id).limit(1)
    )
    if first_after is None:  # nothing since the page was made (or a start from the future)
        return min(page_start, newest_id())
    if first_after >= clock.now() - PAGE_START_MAX_AGE:
        return page_start
    return newest_id()
