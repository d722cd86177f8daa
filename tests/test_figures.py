"""Every figure on a hand-made data set; the expected numbers are worked out in the comments."""

from datetime import date
from decimal import Decimal

import pytest

from fieldapp import figures, periods, workload
from fieldapp.extensions import db
from fieldapp.periods import Period
from tests.boarddata import utc, warning

NOV = Period(date(2026, 11, 1), date(2026, 12, 1))


@pytest.fixture
def county(make):
    """Station A: six warnings in November 2026, one open in October, two in November 2025.

    Station B: one persuaded warning in November. Station C: nothing.
    """
    a = make.station("A", name="东岭派出所")
    b = make.station("B", name="西山派出所", lat=28.0, lon=115.0)
    c = make.station("C", name="南河派出所", lat=28.2, lon=115.2)
    o1 = make.user(a, "officer", "o1", display_name="王警官")
    o2 = make.user(a, "officer", "o2", display_name="李警官")
    o3 = make.user(b, "officer", "o3", display_name="赵警官")
    w = {}
    w[1] = warning(
        make,
        a,
        utc(2026, 11, 10, 2),
        owner=o1,
        accept_s=60,
        contact_s=120,
        outcome="persuaded",
        amount=10000,
        app=True,
        attempts=[("phone", False), ("wechat_video", True)],
        offers=[(o2, "declined"), (o1, "accepted")],
    )
    w[2] = warning(
        make,
        a,
        utc(2026, 11, 11, 3),
        owner=o2,
        accept_s=30,
        contact_s=300,
        outcome="persuaded",
        amount=5000,
        attempts=[("visit", True)],
        offers=[(o2, "accepted")],
    )
    w[3] = warning(
        make,
        a,
        utc(2026, 11, 12, 4),
        owner=o1,
        accept_s=90,
        contact_s=600,
        outcome="unreachable",
        amount=20000,
        defrauded_after=True,
        later_loss=8000,
        attempts=[("phone", False), ("phone", False)],
        offers=[(o1, "accepted")],
    )
    w[4] = warning(
        make,
        a,
        utc(2026, 11, 13, 5),
        owner=o2,
        accept_s=120,
        contact_s=200,
        outcome="not_fraud",
        attempts=[("phone", True)],
        offers=[(o2, "accepted")],
    )
    w[5] = warning(
        make,
        a,
        utc(2026, 11, 14, 6),
        owner=o1,
        accept_s=45,
        contact_s=150,
        outcome="already_lost",
        amount=3000,
        loss=3000,
        fraud_type="fake_loan",
        attempts=[("phone", True)],
        offers=[(o1, "accepted")],
    )
    w[6] = warning(
        make,
        a,
        utc(2026, 11, 15, 7),
        status="offered",
        fraud_type="impersonating_boss",
        offers=[(o1, "pending")],
    )
    # Open, owned by o2, received in October: counts only in "open warnings now".
    warning(make, a, utc(2026, 10, 20, 1), owner=o2, accept_s=10, status="in_contact")
    # Same period last year: one persuaded, one refused.
    warning(
        make,
        a,
        utc(2025, 11, 20, 2),
        owner=o1,
        accept_s=20,
        contact_s=100,
        outcome="persuaded",
        amount=700,
        attempts=[("phone", True)],
    )
    warning(
        make,
        a,
        utc(2025, 11, 21, 2),
        owner=o1,
        accept_s=40,
        contact_s=300,
        outcome="refused",
        attempts=[("visit", True)],
    )
    warning(
        make,
        b,
        utc(2026, 11, 10, 2),
        owner=o3,
        accept_s=5,
        contact_s=10,
        outcome="persuaded",
        amount=99999,
        attempts=[("phone", True)],
    )
    db.session.commit()
    return {"a": a, "b": b, "c": c, "o1": o1, "o2": o2, "o3": o3, "w": w}


def test_totals_of_one_station(county):
    t = figures.totals(NOV, county["a"].id)
    assert t.received == 6
    assert t.reached == 4  # w1 (WeChat), w2 (visit), w4, w5 (phone); w3 never, w6 not yet
    assert t.contact_rate == pytest.approx(4 / 6)
    assert t.outcomes == 5
    assert t.persuaded == 2
    assert t.fraud_outcomes == 4  # not_fraud (w4) does not count
    assert t.persuasion_rate == 0.5
    assert t.app_installs == 1
    assert t.defrauded_after == 1
    assert t.defrauded_after_rate == pytest.approx(1 / 5)
    assert t.losses_avoided == Decimal("15000.00")  # 10000 + 5000
    assert t.reported_losses == Decimal("11000.00")  # 3000 at outcome + 8000 later


def test_timing_median_and_90th_percentile(county):
    t = figures.timing(NOV, county["a"].id)
    # accept: 30 45 60 90 120 → median 60; p90 at rank 3.6 → 90 + 0.6 × 30 = 108
    assert (t.accept_median, t.accept_p90) == (60, pytest.approx(108))
    # contact: 120 150 200 300 600 → median 200; p90 → 300 + 0.6 × 300 = 480
    assert (t.contact_median, t.contact_p90) == (200, pytest.approx(480))
    assert (t.accepted, t.contacted) == (5, 5)


def test_percentile_definition():
    assert figures.percentile([], 0.5) is None
    assert figures.percentile([7], 0.9) == 7
    assert figures.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert figures.percentile([10, 20], 0.9) == pytest.approx(19)


def test_channels_that_reached_people(county):
    assert figures.channels(NOV, county["a"].id) == {
        "phone": 2,
        "wechat_video": 1,
        "visit": 1,
        "other": 0,
    }


def test_by_fraud_type(county):
    rows = {
        b.key: (b.received, b.reached, b.persuaded)
        for b in figures.by_fraud_type(NOV, county["a"].id)
    }
    assert rows == {
        "online_shopping_refund": (4, 3, 2),
        "fake_loan": (1, 1, 0),
        "impersonating_boss": (1, 0, 0),
    }


def test_by_officer(county):
    rows = {
        b.label: (b.received, b.reached, b.persuaded, b.persuasion_rate)
        for b in figures.by_officer(NOV, county["a"].id)
    }
    assert rows["王警官"] == (3, 2, 1, pytest.approx(1 / 3))
    assert rows["李警官"] == (2, 2, 1, 1.0)
    assert rows[""] == (1, 0, 0, None)  # w6, never owned
    assert "赵警官" not in rows


def test_workload(county):
    rows = {
        w.name: (w.offers, w.accepts, w.declines, w.open_now)
        for w in workload.workload(NOV, county["a"].id)
    }
    assert rows == {"王警官": (4, 3, 0, 0), "李警官": (3, 2, 1, 1)}


def test_county_totals_and_station_ranking(county):
    t = figures.totals(NOV, None)
    assert (t.received, t.persuaded, t.fraud_outcomes) == (7, 3, 5)
    ranking = figures.station_ranking(NOV)
    assert [(b.key, b.persuasion_rate) for b in ranking] == [
        (county["b"].id, 1.0),
        (county["a"].id, 0.5),
        (county["c"].id, None),
    ]


def test_station_figures_never_include_another_station(county):
    fig = figures.compute(NOV, county["b"].id)
    assert fig.totals.received == 1
    assert fig.totals.losses_avoided == Decimal("99999.00")
    assert {w.name for w in fig.workload} == {"赵警官"}
    assert fig.ranking == []


def test_same_period_last_year(county):
    fig = figures.compute(NOV, county["a"].id)
    last = fig.last_year
    assert last.period == Period(date(2025, 11, 1), date(2025, 12, 1))
    assert (last.totals.received, last.totals.persuaded, last.totals.persuasion_rate) == (2, 1, 0.5)
    assert last.totals.losses_avoided == Decimal("700.00")
    assert (last.timing.accept_median, last.timing.contact_median) == (30, 200)
    assert last.channels["visit"] == 1 and last.channels["phone"] == 1


def test_empty_period(county):
    fig = figures.compute(Period(date(2026, 12, 5), date(2026, 12, 6)), county["a"].id)
    t = fig.totals
    assert (t.received, t.reached, t.outcomes, t.persuaded) == (0, 0, 0, 0)
    assert t.contact_rate is None and t.persuasion_rate is None and t.defrauded_after_rate is None
    assert t.losses_avoided == Decimal("0.00") and t.reported_losses == Decimal("0.00")
    assert fig.timing.accept_median is None and fig.timing.contact_p90 is None
    assert fig.fraud_types == [] and set(fig.channels.values()) == {0}


def test_period_boundaries_are_shanghai_days(make):
    a = make.station("A")
    # 23:59 local on 30 November is 15:59 UTC; 00:01 local on 1 December is 16:01 UTC on the
    # 30th: same UTC date, different local days.
    late = warning(make, a, utc(2026, 11, 30, 15, 59))
    early = warning(make, a, utc(2026, 11, 30, 16, 1))
    # And the start of November: 00:01 local on the 1st is 16:01 UTC on 31 October.
    first = warning(make, a, utc(2026, 10, 31, 16, 1))
    before = warning(make, a, utc(2026, 10, 31, 15, 59))
    db.session.commit()
    assert figures.totals(NOV, a.id).received == 2  # first, late
    assert figures.totals(Period(date(2026, 11, 30), date(2026, 12, 1)), a.id).received == 1
    assert figures.totals(Period(date(2026, 12, 1), date(2026, 12, 2)), a.id).received == 1
    assert figures.totals(Period(date(2026, 10, 31), date(2026, 11, 1)), a.id).received == 1
    assert {late.id, early.id, first.id, before.id}  # all four were stored


def test_presets_follow_the_local_calendar():
    # 17:00 UTC on 30 November is 01:00 on Tuesday 1 December in Shanghai.
    now = utc(2026, 11, 30, 17)
    assert periods.preset("today", now) == Period(date(2026, 12, 1), date(2026, 12, 2))
    assert periods.preset("week", now) == Period(date(2026, 11, 30), date(2026, 12, 2))
    assert periods.preset("month", now) == Period(date(2026, 12, 1), date(2026, 12, 2))
    leap = Period(date(2028, 2, 29), date(2028, 3, 1)).last_year()
    assert leap == Period(date(2027, 2, 28), date(2027, 3, 1))
