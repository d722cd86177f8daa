"""How every change to a warning begins: a compare-and-set on its status that locks its row.

A change checks a state (open, offered, who owns it, which offers are pending) and then writes.
Two requests doing that side by side could both pass their checks before either writes: a
reassign that read "open" would then reopen a warning a resolve had just closed. So each change
first runs one UPDATE on the warning's row, conditional on the statuses it accepts. The row stays
locked until the transaction ends, so changes to one warning queue here one behind the other;
the loser of a race waits, then finds the status the winner committed (and 0 rows when that
status no longer fits). Everything read after this call is current: on PostgreSQL each
statement of a READ COMMITTED transaction sees what committed before it, and nobody else can
commit a change to this warning meanwhile; on SQLite the UPDATE takes the database's one write
lock. Offers, attempts and participants of a warning change only under its lock.

Locks are taken warning row first, one warning at a time, or in id order (going off duty), so
two changes can never wait for each other.
"""

from collections.abc import Iterable

import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import Warning


def lock(warning: Warning, statuses: Iterable[str] | None) -> bool:
    """Lock `warning`'s row if its status is one of `statuses` (any status when None), and
    reload it; False (nothing locked, the reloaded warning tells why) when it is not."""
    query = sa.update(Warning).where(Warning.id == warning.id)
    if statuses is not None:
        query = query.where(Warning.status.in_(tuple(statuses)))
    # Writing a column to itself locks the row and changes nothing anyone can see; RETURNING
    # reloads the warning in the same round trip.
    locked = db.session.scalar(
        query.values(last_action_at=Warning.last_action_at)
        .returning(Warning)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if locked is None:
        db.session.refresh(warning)
        return False
    return True
