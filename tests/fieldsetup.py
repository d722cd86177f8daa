"""Shared set-up for the field app tests: a station, its people and an owned warning."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest

from fieldapp import dispatch
from fieldapp.extensions import db
from fieldapp.models import Station, User, Warning


@dataclass
class Field:
    station: Station
    other_station: Station
    officer: User
    colleague: User
    aux: User
    chief: User
    stranger: User
    warning: Warning


def cid() -> str:
    return str(uuid.uuid4())


@pytest.fixture(name="field")
def field_fixture(make, fake_clock):
    """An officer who accepted a high-risk warning received 10 minutes ago, colleagues, and
    another station."""
    st = make.station("CG")
    other = make.station("XX", lat=28.5, lon=115.5)
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    colleague = make.user(st, "officer", "mj2", on_duty=True, lat=st.lat, lon=st.lon + 0.1)
    aux = make.user(st, "auxiliary", "fj1", on_duty=True)
    chief = make.user(st, "chief", "sz1")
    stranger = make.user(other, "officer", "mjx", on_duty=True, lat=other.lat, lon=other.lon)
    warning = make.warning(st, received_at=fake_clock.now() - timedelta(minutes=10))
    dispatch.make_offer(warning, officer, fake_clock.now())
    dispatch.accept(warning, officer, fake_clock.now())
    db.session.commit()
    return Field(st, other, officer, colleague, aux, chief, stranger, warning)
