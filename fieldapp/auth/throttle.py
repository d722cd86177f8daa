"""Login throttling keyed on account + address, with growing waits instead of a lock-out.

Failed logins are counted in three buckets:

- account + address: a few free failures, then waits that double up to a cap. An attacker
  guessing from elsewhere fills their own bucket, not the one of the officer's phone or
  station, so nobody can lock an officer out by typing wrong passwords for them.
- account, from any address, but only for devices this account has not logged in from
  before (devices.py): a guess spread over many addresses slows down, while the officer's
  own phone is not held back by it.
- address, over every account: spraying one password over many usernames slows down. Only
  failures count, so a whole shift logging in behind one NAT address at shift change passes.

Buckets are keyed by the typed username whether or not such an account exists: the answer, and
the work done for it, are the same for known and unknown accounts.

Each attempt is charged before the password is checked, with a compare-and-set that refuses
to charge a bucket that is waiting, so parallel requests cannot slip extra guesses in; a
success gives the charge back.
"""

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from fieldapp.extensions import db
from fieldapp.models import LoginThrottle, UTCDateTime

# A bucket with no failure for this long starts again from zero.
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Rule:
    free: int  # failures before the first wait
    first_wait_s: int  # then doubling with each further failure
    max_wait_s: int

    def wait_after(self, failures: int) -> int:
        """Seconds to wait after the `failures`-th failure (0: none)."""
        if failures <= self.free:
            return 0
        return min(self.first_wait_s * 2 ** min(failures - self.free - 1, 20), self.max_wait_s)


ACCOUNT_ADDRESS = Rule(free=5, first_wait_s=30, max_wait_s=15 * 60)
ACCOUNT = Rule(free=20, first_wait_s=60, max_wait_s=15 * 60)
ADDRESS = Rule(free=100, first_wait_s=30, max_wait_s=15 * 60)


@dataclass(frozen=True)
class Bucket:
    key: str
    account_key: str | None
    rule: Rule


def normalise_account(username: str) -> str:
    """The form a username is counted under: case and surrounding spaces do not matter."""
    return username.strip().casefold()


def _mac(*parts: str) -> str:
    secret = current_app.secret_key
    secret = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(secret, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def account_key(username: str) -> str:
    """The HMAC an account is known by, in the throttle and in the known-device cookie."""
    return _mac("account", normalise_account(username))


def address_group(address: str | None) -> str:
    """IPv4 addresses as they are; IPv6 by their /64, which one subscriber holds whole."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def buckets_for(username: str, address: str | None, known_device: bool) -> list[Bucket]:
    """The buckets one login attempt is counted in."""
    account = account_key(username)
    place = address_group(address)
    found = [Bucket(_mac("address", place), None, ADDRESS)]
    if not known_device:
        found.append(Bucket(_mac("account-any", account), account, ACCOUNT))
    found.append(Bucket(_mac("account-address", account, place), account, ACCOUNT_ADDRESS))
    return found


def _at(value: datetime):
    return sa.literal(value, UTCDateTime())


def wait_until(buckets: list[Bucket], now: datetime) -> datetime | None:
    """When the latest wait among `buckets` ends, or None when none is waiting."""
    return db.session.scalar(
        sa.select(sa.func.max(LoginThrottle.blocked_until)).where(
            LoginThrottle.key.in_([b.key for b in buckets]), LoginThrottle.blocked_until > now
        )
    )


def _insert(dialect: str):
    return (postgresql if dialect == "postgresql" else sqlite).insert(LoginThrottle)


def _charge_one(bucket: Bucket, now: datetime) -> bool:
    table = LoginThrottle.__table__
    forgotten = table.c.last_failure_at < _at(now - FORGET_AFTER)
    failures = sa.case((forgotten, 1), else_=table.c.failures + 1)
    rule = bucket.rule
    # Every count past the free ones, up to where the wait reaches its cap, has its own end.
    steps, n = [], rule.free + 1
    while rule.wait_after(n) < rule.max_wait_s:
        steps.append((failures == n, _at(now + timedelta(seconds=rule.wait_after(n)))))
        n += 1
    blocked = sa.case(
        (failures <= rule.free, sa.null()),
        *steps,
        else_=_at(now + timedelta(seconds=rule.max_wait_s)),
    )
    statement = (
        _insert(db.engine.dialect.name)
        .values(
            key=bucket.key,
            account_key=bucket.account_key,
            failures=1,
            last_failure_at=now,
            blocked_until=None,  # every rule lets at least one failure go free
        )
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"failures": failures, "last_failure_at": now, "blocked_until": blocked},
            where=sa.or_(table.c.blocked_until.is_(None), table.c.blocked_until <= _at(now)),
        )
        .returning(table.c.failures)
    )
    return db.session.execute(statement).first() is not None


def charge(buckets: list[Bucket], now: datetime) -> bool:
    """Count one attempt in every bucket; False when one started waiting meanwhile."""
    return all(_charge_one(bucket, now) for bucket in buckets)


def succeeded(buckets: list[Bucket]) -> None:
    """Give a successful attempt's charge back; the account + address bucket starts afresh."""
    for bucket in buckets:
        if bucket.rule is ACCOUNT_ADDRESS:
            db.session.execute(sa.delete(LoginThrottle).where(LoginThrottle.key == bucket.key))
            continue
        left = sa.case((LoginThrottle.failures > 0, LoginThrottle.failures - 1), else_=0)
        db.session.execute(
            sa.update(LoginThrottle)
            .where(LoginThrottle.key == bucket.key)
            .values(
                failures=left,
                blocked_until=sa.case(
                    (left <= bucket.rule.free, sa.null()), else_=LoginThrottle.blocked_until
                ),
            )
            .execution_options(synchronize_session=False)
        )


def clear_account(username: str) -> int:
    """Forget every failure counted against `username` (an unlock); returns buckets cleared."""
    return db.session.execute(
        sa.delete(LoginThrottle).where(LoginThrottle.account_key == account_key(username))
    ).rowcount


def account_waits(usernames: list[str], now: datetime) -> dict[str, datetime]:
    """For each of `usernames` held back somewhere, when its latest wait ends."""
    keys = {account_key(name): name for name in usernames}
    if not keys:
        return {}
    rows = db.session.execute(
        sa.select(LoginThrottle.account_key, sa.func.max(LoginThrottle.blocked_until))
        .where(LoginThrottle.account_key.in_(list(keys)), LoginThrottle.blocked_until > now)
        .group_by(LoginThrottle.account_key)
    )
    return {keys[key]: until for key, until in rows}


def forget_old(now: datetime) -> None:
    """Drop buckets with nothing to remember."""
    db.session.execute(
        sa.delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < now - FORGET_AFTER,
            sa.or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
        )
    )
