"""Small builders for test data; each adds to the session and flushes, tests commit."""

from datetime import timedelta
from decimal import Decimal
from itertools import count

from fieldapp import clock, tokens
from fieldapp.auth.passwords import hash_password
from fieldapp.extensions import db
from fieldapp.models import Station, User, Warning

PASSWORD = "correct-horse-42"
_HASH = None
_seq = count(1)


def _password_hash() -> str:
    global _HASH
    if _HASH is None:
        _HASH = hash_password(PASSWORD)
    return _HASH


def station(code: str | None = None, lat: float = 27.8170, lon: float = 114.9230, **kw) -> Station:
    n = next(_seq)
    # One offer at a time unless a test asks for parallel offers (the app's default is 2):
    # most tests follow one officer's offer through its chain.
    kw.setdefault("parallel_offers_high", 1)
    row = Station(code=code or f"S{n}", name=kw.pop("name", f"Station {n}"), lat=lat, lon=lon, **kw)
    db.session.add(row)
    db.session.flush()
    return row


def user(
    station: Station,
    role: str = "officer",
    username: str | None = None,
    *,
    on_duty: bool = False,
    lat: float | None = None,
    lon: float | None = None,
    position_age_s: float = 0,
    **kw,
) -> User:
    n = next(_seq)
    row = User(
        username=username or f"{role}{n}",
        password_hash=_password_hash(),
        display_name=kw.pop("display_name", f"{role.title()} {n}"),
        role=role,
        station_id=station.id,
        **kw,
    )
    if on_duty:
        row.duty_status = "on_duty"
    if lat is not None:
        row.lat, row.lon, row.accuracy_m = lat, lon, 20.0
        row.position_at = clock.now() - timedelta(seconds=position_age_s)
    db.session.add(row)
    db.session.flush()
    return row


def token(station: Station | None = None, name: str = "centre", webhook_url: str | None = None):
    """Returns (row, plaintext)."""
    row, plaintext = tokens.create_token(name, station, webhook_url)
    db.session.flush()
    return row, plaintext


def warning(station: Station, **kw) -> Warning:
    n = next(_seq)
    now = clock.now()
    values = dict(
        source_ref=f"REF-{n}",
        person_name="张三",
        person_phone="13800138000",
        fraud_type="online_shopping_refund",
        risk_level="high",
        amount_at_risk=Decimal("10000"),
        lat=station.lat + 0.01,
        lon=station.lon + 0.01,
        station_id=station.id,
        status="received",
        received_at=now,
        last_action_at=now,
    )
    values.update(kw)
    row = Warning(**values)
    db.session.add(row)
    db.session.flush()
    return row


def intake_body(**overrides) -> dict:
    """A valid intake JSON body."""
    n = next(_seq)
    body = {
        "source_ref": f"SRC-{n}",
        "person_name": "李四",
        "person_phone": "+86 138-0013-8000",
        "fraud_type": "fake_loan",
        "risk_level": "high",
        "amount_at_risk": 20000,
        "location": {"lat": 27.82, "lon": 114.93, "accuracy_m": 50},
        "address": "东岭村12号",
        "issued_at": "2026-11-25T08:30:00+08:00",
        "note": "贷款保证金",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
