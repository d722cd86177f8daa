"""Figures people can read: locale numbers, legends, 12 px labels, inclusive periods, stations."""

import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from flask_babel import force_locale

from fieldapp import labels, numbers
from fieldapp.board import report
from fieldapp.extensions import db
from fieldapp.periods import Period
from tests.boarddata import utc, warning


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("zh_CN", ("12,345", "3,785,600 元", "50.0%", "850 米", "3.2 公里", "1,234")),
        ("en", ("12,345", "3,785,600 yuan", "50.0%", "850 m", "3.2 km", "1,234")),
    ],
)
def test_numbers_follow_the_locale(app, locale, expected):
    with app.test_request_context(), force_locale(locale):
        got = (
            numbers.count(12345),
            numbers.money(Decimal("3785600")),
            numbers.rate(0.5),
            labels.distance(850.4),
            labels.distance(3150),
            numbers.seconds(1234.4),
        )
    assert got == expected
    assert numbers.count(None) == numbers.money(None) == numbers.rate(None) == ""


def test_csv_period_label_and_file_name_are_inclusive(app):
    one_day = Period(date(2026, 12, 1), date(2026, 12, 2))
    with app.test_request_context(), force_locale("zh_CN"):
        assert report.period_label(one_day) == "2026-12-01 至 2026-12-01"
    assert report.csv_filename(one_day) == "fieldapp-figures-2026-12-01-2026-12-01.csv"


@pytest.fixture
def county(make, fake_clock):
    a = make.station("A", name="东岭派出所")
    b = make.station("B", name="西山派出所", lat=28.2, lon=115.3)
    make.user(a, "chief", "chief_a")
    make.user(a, "admin", "root")
    a1 = make.user(a, "officer", "a1", display_name="杨强", badge_no="031207")
    a2 = make.user(a, "officer", "a2", display_name="杨强", badge_no="046610")
    b1 = make.user(b, "officer", "b1", display_name="赵警官", badge_no="000007")
    for owner, station in ((a1, a), (a2, a), (b1, b)):
        warning(
            make,
            station,
            utc(2026, 12, 1, 2),
            owner=owner,
            accept_s=30,
            contact_s=60,
            outcome="persuaded",
            amount=3785600,
            attempts=[("phone", True)],
            offers=[(owner, "accepted")],
        )
    db.session.commit()
    return {"a": a, "b": b}


ONE_DAY = "period=custom&start=2026-12-01&end=2026-12-01"


def test_page_and_csv_say_the_same_inclusive_period(county, client, auth):
    auth.login("chief_a")
    page = client.get(f"/board/figures?{ONE_DAY}").get_data(as_text=True)
    assert "2026-12-01 至 2026-12-01" in page
    resp = client.get(f"/board/figures.csv?{ONE_DAY}")
    assert (
        'filename="fieldapp-figures-2026-12-01-2026-12-01.csv"'
        in resp.headers["Content-Disposition"]
    )
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert rows[0] == ["时间段", "2026-12-01 至 2026-12-01"]


def test_page_money_is_grouped_csv_money_is_plain(county, client, auth):
    auth.login("chief_a")
    page = client.get(f"/board/figures?{ONE_DAY}").get_data(as_text=True)
    assert "7,571,200 元" in page and "7571200" not in page
    text = client.get(f"/board/figures.csv?{ONE_DAY}").data.decode("utf-8-sig")
    assert "7571200.00" in text and "7,571,200" not in text


def test_charts_have_a_legend_and_readable_labels(county, client, auth):
    auth.login("chief_a")
    page = client.get(f"/board/figures?{ONE_DAY}").get_data(as_text=True)
    charts = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(charts) == 2
    for svg in charts:
        assert "viewBox" not in svg  # not scaled down with the screen: px sizes are real
        sizes = [int(s) for s in re.findall(r'font-size="(\d+)"', svg)]
        assert sizes and min(sizes) >= 12
        legend = re.findall(r"<text[^>]*>([^<]+)</text>", svg)[:2]
        assert legend == ["本期", "去年同期"]


def test_county_workload_is_grouped_by_station_with_badges(county, client, auth):
    auth.login("root")
    page = client.get(f"/board/figures?{ONE_DAY}").get_data(as_text=True)
    workload = page.split('id="workload"')[1].split("</table>")[0]
    groups = re.findall(
        r'<tr class="group"><th colspan="\d+" scope="rowgroup">([^<]+)</th>', workload
    )
    assert groups == ["东岭派出所 (A)", "西山派出所 (B)"]
    east = workload.split("西山派出所 (B)")[0]
    assert east.count("杨强") == 2 and "警号 031207" in east and "警号 046610" in east
    assert "赵警官" not in east
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/board/figures.csv?{ONE_DAY}").data.decode("utf-8-sig"))
        )
    )
    assert ["西山派出所 (B)", "赵警官（警号 000007）", "1", "1", "0", "0", "0", "0"] in rows


def test_station_figures_have_no_station_groups(county, client, auth):
    auth.login("chief_a")
    page = client.get(f"/board/figures?{ONE_DAY}").get_data(as_text=True)
    assert 'class="group"' not in page


@pytest.mark.parametrize(
    "query",
    [
        "period=custom&start=9999-12-31&end=9999-12-31",
        "period=custom&start=0001-01-01&end=0001-01-02",
        "period=custom&start=1970-01-01&end=1970-01-01",
        "period=custom&start=2026-12-01&end=%00",
        "period=custom&start=２０２６-12-01&end=2026-12-01",
        "station=99999999999999999999&period=week",
    ],
)
def test_extreme_periods_are_a_message_not_an_error(county, client, auth, query):
    auth.login("root")
    assert client.get(f"/board/figures?{query}").status_code == 200
    assert client.get(f"/board/figures.csv?{query}").status_code == 200


def test_money_is_written_one_way_with_fen_only_when_there_are_any(app):
    with app.test_request_context(), force_locale("zh_CN"):
        assert numbers.money(Decimal("12.5")) == "12.50 元"
        assert numbers.money(Decimal("10000.00")) == "10,000 元"
        assert numbers.money(None) == ""
        assert numbers.amount(Decimal("1234567.891")) == "1,234,567.89"
