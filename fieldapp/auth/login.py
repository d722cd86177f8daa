"""Checking a login and changing one's own password: plain functions over the session."""

import math
from datetime import datetime

import sqlalchemy as sa

from fieldapp import clock, events, refusals
from fieldapp.auth import devices, passwords, sessions, throttle
from fieldapp.extensions import db
from fieldapp.models import User
from fieldapp.refusals import Refusal


def _wrong(buckets: list[throttle.Bucket], now: datetime) -> Refusal:
    until = throttle.wait_until(buckets, now)
    return Refusal("wrong_password", then=_throttled(until, now) if until is not None else None)


def _throttled(until: datetime, now: datetime) -> Refusal:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    if seconds < 120:
        return Refusal("throttled_seconds", retry_at=until, n=seconds)
    return Refusal("throttled_minutes", retry_at=until, n=math.ceil(seconds / 60))


def authenticate(username: str, password: str, address: str | None) -> User:
    """Check credentials under the throttle; commits its bookkeeping; raises refusals.Refusal.

    Known and unknown usernames take the same path: the same throttle buckets, one password
    hash check (a dummy hash for unknown ones), the same message.
    """
    now = clock.now()
    account = throttle.account_key(username)
    buckets = throttle.buckets_for(username, address, devices.is_known(account))
    until = throttle.wait_until(buckets, now)
    if until is None and not throttle.charge(buckets, now):
        until = throttle.wait_until(buckets, now) or now
    if until is not None:
        db.session.commit()
        raise _throttled(until, now)
    user = db.session.scalar(sa.select(User).where(User.username == username.strip()))
    if not passwords.verify_password(
        user.password_hash if user else passwords.DUMMY_HASH, password
    ):
        events.record("login_failed", actor=user, reason="bad_password" if user else "unknown")
        throttle.forget_old(now)
        db.session.commit()
        raise _wrong(buckets, now)
    # The password was right: only now may the answer depend on the account.
    if not user.active:
        events.record("login_failed", actor=user, reason="inactive")
        db.session.commit()
        raise Refusal("account_disabled")
    expires = user.temp_password_expires_at
    if user.must_change_password and expires is not None and expires <= now:
        events.record("login_failed", actor=user, reason="one_time_password_expired")
        db.session.commit()
        raise Refusal("one_time_password_expired")
    throttle.succeeded(buckets)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = now
    events.record("login", actor=user)
    return user


def change_own_password(user: User, new_password: str) -> None:
    """Set the user's own new password; their other sessions end, this one stays."""
    was_forced = user.must_change_password
    user.password_hash = passwords.hash_password(new_password)
    user.must_change_password = False
    user.temp_password_expires_at = None
    db.session.flush()
    sessions.end_all_sessions(user, reason="password_changed", keep_current=True)
    events.record("password_changed", actor=user, forced=was_forced)


def check_current_password(user: User, password: str, address: str | None) -> str | None:
    """Why `password` is not accepted as `user`'s current one (None: it is), throttled as a
    login from this device is, so a borrowed session cannot guess its way to the password."""
    now = clock.now()
    buckets = throttle.buckets_for(user.username, address, known_device=True)
    until = throttle.wait_until(buckets, now)
    if until is None and not throttle.charge(buckets, now):
        until = throttle.wait_until(buckets, now) or now
    if until is not None:
        db.session.commit()
        return _throttled(until, now).message()
    if not passwords.verify_password(user.password_hash, password):
        events.record("password_change_failed", actor=user)
        db.session.commit()
        return refusals.message("current_password_wrong")
    throttle.succeeded(buckets)
    return None
