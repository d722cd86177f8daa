"""Hostile input on every parameter answers 4xx with a clear message, never 500.

First the cases an adversarial test found (issue 14, finding 8), one by one; then properties
over the sync, intake, CSV, hand-entry, board and stream parameters: extreme dates, NUL and
other controls, huge integers, non-ASCII digits (², ٣, １), bidi controls, huge strings.
With TESTING on, an exception in a view or a stream propagates into the test: a 500 cannot hide.
"""

import csv
import io
import json
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldapp.extensions import db
from fieldapp.models import Warning
from tests.test_access_matrix import SHORT_STREAMS

EXAMPLES = int(os.environ.get("FIELDAPP_HYPOTHESIS_EXAMPLES", "40"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
# Streams answer once and end, so a property can open hundreds of them.
INSTANT_STREAMS = {**SHORT_STREAMS, "STREAM_SECONDS": 0, "BOARD_STREAM_SECONDS": 0}


@pytest.fixture
def world(make, app):
    app.config.update(INSTANT_STREAMS)
    a = make.station("HA")
    b = make.station("HB", lat=28.2, lon=115.3)
    officer = make.user(a, "officer", "h_off", on_duty=True, lat=a.lat, lon=a.lon)
    chief = make.user(a, "chief", "h_chief")
    make.user(b, "officer", "h_off_b")
    _row, token = make.token(name="centre")
    warning = make.warning(a, status="accepted", owner_id=officer.id)
    db.session.commit()
    return {"a": a, "b": b, "officer": officer, "chief": chief, "token": token, "w": warning}


def intake(client, world, body, **headers):
    return client.post(
        "/api/v1/warnings",
        data=body if isinstance(body, bytes) else json.dumps(body),
        headers={"Authorization": f"Bearer {world['token']}", **headers},
        content_type="application/json",
    )


def assert_json_refusal(resp) -> None:
    """A JSON API's 4xx in the contract's shapes."""
    assert resp.status_code < 500, resp.get_data(as_text=True)[:300]
    if resp.status_code == 422:
        errors = resp.get_json()["errors"]
        assert errors and all(isinstance(k, str) and v for k, v in errors.items())
    elif resp.status_code >= 400:
        assert isinstance(resp.get_json()["error"], str)


def post_json(client, token: str, path: str, body):
    return client.post(path, json=body, headers={"X-CSRFToken": token})


def server_header(value: str) -> str:
    """A header as a WSGI server hands it over: its UTF-8 bytes read as Latin-1."""
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


# --- the cases found (finding 8) ------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("issued_at", "0001-01-01T00:00:00+08:00"),
        ("issued_at", "9999-12-31T23:59:59-05:00"),
        ("person_name", "张\x00三"),
        ("address", "东岭村\x00"),
        ("note", "a\x00b"),
        ("source_ref", "R\x00"),
        ("suspect_account", "6222\x00"),
        ("station_code", "HA\x00"),
    ],
)
def test_intake_extreme_time_or_nul_is_422(client, world, make, field, value):
    body = make.intake_body(**{"station_code": "HA", field: value})
    resp = intake(client, world, body)
    assert resp.status_code == 422
    assert field in resp.get_json()["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Warning)) == 1


def csv_upload(client, auth, text: str):
    token = auth.csrf("/intake/import")
    data = {"csrf_token": token, "file": (io.BytesIO(text.encode()), "batch.csv")}
    return client.post("/intake/import", data=data, content_type="multipart/form-data")


def test_csv_nul_and_huge_cell_are_row_errors(client, auth, world):
    auth.login("h_chief")
    header = "source_ref,person_name,person_phone,fraud_type,station_code\n"
    nul = csv_upload(client, auth, header + "N-1,王\x00一,13800000001,fake_loan,HA\n")
    assert nul.status_code == 422 and "控制字符" in nul.get_data(as_text=True)
    huge = csv_upload(
        client, auth, header + "N-2," + "王" * 140_000 + ",13800000001,fake_loan,HA\n"
    )
    assert huge.status_code == 422 and "CSV" in huge.get_data(as_text=True)


@pytest.mark.parametrize("value", ["9" * 30, str(2**31), str(2**63), "²", "٣", "１"])
def test_board_officer_and_station_filters(client, auth, world, value):
    auth.login("h_chief")
    assert client.get(f"/board/?officer={value}&station={value}").status_code == 200


@pytest.mark.parametrize("value", ["²", "٣", "１", "9" * 30, str(2**63), "-5"])
def test_board_stream_start_ids(client, auth, world, value):
    auth.login("h_chief")
    resp = client.get(f"/board/stream?last_id={value}", buffered=True)
    assert resp.status_code == 200 and resp.get_data(as_text=True).startswith("retry:")
    resp = client.get(
        "/board/stream", headers={"Last-Event-ID": server_header(value)}, buffered=True
    )
    assert resp.status_code == 200 and resp.get_data(as_text=True).startswith("retry:")


@pytest.mark.parametrize("value", ["²", "٣", "１", "9" * 30, str(2**63)])
def test_device_stream_last_event_id(client, auth, world, value):
    auth.login("h_off")
    resp = client.get(
        "/api/v1/me/stream", headers={"Last-Event-ID": server_header(value)}, buffered=True
    )
    assert resp.status_code == 200 and resp.get_data(as_text=True).startswith("retry:")


@pytest.mark.parametrize(
    "start, end",
    [("0001-01-01", "0001-01-31"), ("9999-12-01", "9999-12-31"), ("1999-12-31", "2000-01-02")],
)
@pytest.mark.parametrize("path", ["/board/figures", "/board/figures.csv"])
def test_figure_periods_in_year_1_or_9999(client, auth, world, start, end, path):
    auth.login("h_chief")
    resp = client.get(f"{path}?period=custom&start={start}&end={end}")
    assert resp.status_code == 200
    if path == "/board/figures":
        assert "2000" in resp.get_data(as_text=True) and "2099" in resp.get_data(as_text=True)


@pytest.mark.parametrize("message_id", ["m3000000000", "m" + "9" * 10, "m²", "m٣"])
def test_receipt_with_an_impossible_message_id(client, auth, world, message_id):
    auth.login("h_off")
    resp = auth.post_json("/api/v1/push/receipts", {"message_id": message_id})
    assert resp.status_code in (404, 422)
    assert_json_refusal(resp)


def test_reassign_to_a_non_ascii_or_huge_user_id(client, auth, world):
    auth.login("h_chief")
    token = auth.csrf("/board/")
    for value in ("²", str(2**40)):
        resp = client.post(
            f"/board/warnings/{world['w'].id}/reassign",
            data={"to_user_id": value, "csrf_token": token},
        )
        assert resp.status_code == 302


def test_sync_times_in_year_1_are_rejected_entries(client, auth, world):
    auth.login("h_off")
    entries = [
        {
            "client_id": uuid.uuid4().hex,
            "kind": "attempt",
            "warning_id": world["w"].id,
            "data": {"channel": "phone", "reached": False, "attempted_at": when},
        }
        for when in ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-05:00")
    ]
    resp = auth.post_json("/api/v1/sync", {"entries": entries})
    assert resp.status_code == 200
    results = resp.get_json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert all("data.attempted_at" in r["errors"] for r in results)


# --- properties -----------------------------------------------------------------------------

ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x1b[31m",
    "\u202eevil\u202c",
    "\u2066x\u2069",
    "²",
    "٣٣",
    "１２３",
    "９" * 11,
    "-1",
    "0",
    "1e9",
    "NaN",
    "Infinity",
    "9" * 40,
    str(2**31),
    str(2**63),
    "m3000000000",
    "0001-01-01T00:00:00+08:00",
    "9999-12-31T23:59:59-05:00",
    "2026-02-30T10:00:00+08:00",
    "2026-11-25T10:00:00",
    "😀",
    "王" * 300,
]
odd_text = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=40),
    st.text(st.characters(categories=["Cc", "Cf", "Nd", "No", "Zs"]), max_size=12),
)
huge_int = st.one_of(
    st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**63, 2**64, -(2**63)]),
    st.integers(min_value=-(2**80), max_value=2**80),
)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12)), timezone(timedelta(0))]
)
odd_time = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones
    ).map(datetime.isoformat),
    st.sampled_from([s for s in ODD_STRINGS if s[:1].isdigit()]),
)
odd_scalar = st.one_of(
    odd_text, huge_int, odd_time, st.none(), st.booleans(), st.floats(allow_nan=False)
)
odd_value = st.one_of(
    odd_scalar,
    st.lists(odd_scalar, max_size=3),
    st.dictionaries(st.sampled_from(["lat", "lon", "x"]), odd_scalar, max_size=3),
)
INTAKE_FIELDS = [
    "source_ref",
    "person_name",
    "person_phone",
    "fraud_type",
    "risk_level",
    "amount_at_risk",
    "location",
    "station_code",
    "address",
    "suspect_account",
    "issued_at",
    "note",
]


def test_intake_never_500(client, world, make):
    @PROPERTY
    @given(changes=st.dictionaries(st.sampled_from(INTAKE_FIELDS), odd_value, max_size=3))
    def run(changes):
        body = {**make.intake_body(station_code="HA"), **changes}
        assert_json_refusal(intake(client, world, body))

    run()


def test_intake_body_of_any_bytes_never_500(client, world):
    @PROPERTY
    @given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
    def run(raw):
        assert_json_refusal(intake(client, world, raw))

    run()


SYNC_DATA_FIELDS = [
    "channel",
    "reached",
    "attempted_at",
    "note",
    "attempt_id",
    "outcome",
    "loss_amount",
    "app_installed",
    "follow_up_at",
]


def test_sync_never_500(client, auth, world, make):
    auth.login("h_off")
    token = auth.csrf("/field/")
    officer, station = world["officer"], world["a"]

    entry = st.fixed_dictionaries(
        {
            "client_id": st.one_of(st.uuids().map(str), odd_text),
            "kind": st.one_of(
                st.sampled_from(["attempt", "resolve", "confirm", "accept", "help"]), odd_text
            ),
            "data": st.dictionaries(
                st.sampled_from(SYNC_DATA_FIELDS),
                st.one_of(odd_value, st.sampled_from(["phone", "persuaded", "already_lost"])),
                max_size=4,
            ),
            "recorded_at": odd_time,
        },
        optional={"warning_id": st.one_of(st.just("own"), huge_int, odd_text)},
    )

    @PROPERTY
    @given(entries=st.lists(entry, min_size=1, max_size=3))
    def run(entries):
        warning = make.warning(station, status="accepted", owner_id=officer.id)
        db.session.commit()
        for item in entries:
            if item.get("warning_id") == "own":
                item["warning_id"] = warning.id
        resp = post_json(client, token, "/api/v1/sync", {"entries": entries})
        assert_json_refusal(resp)
        if resp.status_code == 200:
            results = resp.get_json()["results"]
            assert len(results) == len(entries)
            for result in results:
                assert result["status"] in ("applied", "duplicate", "conflict", "rejected")
                assert isinstance(result["detail"], str) and result["detail"]

    run()


CSV_COLUMNS = ["source_ref", "person_name", "person_phone", "fraud_type", "station_code"]


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, "issued_at", "lat", "lon", "note"])
    writer.writerows(rows)
    return out.getvalue()


def test_csv_and_hand_entry_never_500(client, auth, world):
    auth.login("h_chief")
    good = ["R", "王一", "13800000001", "fake_loan", "HA", "", "", "", ""]
    cell = st.one_of(odd_text, odd_time)
    form_token = auth.csrf("/intake/new")

    @PROPERTY
    @given(
        cells=st.dictionaries(st.integers(min_value=0, max_value=8), cell, max_size=3),
        ref=st.uuids(),
    )
    def run(cells, ref):
        row = [str(ref), *good[1:]]
        for index, value in cells.items():
            row[index] = str(value)
        resp = csv_upload(client, auth, _csv([row]))
        assert resp.status_code in (302, 422), resp.status_code
        form = dict(zip([*CSV_COLUMNS, "issued_at", "lat", "lon", "note"], row, strict=True))
        form["csrf_token"] = form_token
        resp = client.post("/intake/new", data=form)
        assert resp.status_code in (302, 422), resp.status_code

    run()


def test_board_and_stream_parameters_never_500(client, auth, world):
    auth.login("h_chief")
    token = auth.csrf("/board/")
    w = world["w"]

    @PROPERTY
    @given(a=odd_text, b=odd_text, c=odd_time, d=odd_time)
    def run(a, b, c, d):
        for path in (
            f"/board/?officer={a}&station={b}&status={a}&fraud_type={b}",
            f"/board/figures?period=custom&start={c}&end={d}&station={a}",
            f"/board/figures.csv?period={a}&start={c[:10]}&end={d[:10]}",
            f"/board/stream?last_id={a}&station={b}",
        ):
            # Buffered: a stream fails while it is read, not when it starts.
            resp = client.get(path, headers={"Last-Event-ID": server_header(b)}, buffered=True)
            assert resp.status_code == 200, (path, resp.status_code)
        resp = client.post(
            f"/board/warnings/{w.id}/reassign",
            data={"to_user_id": a, "next": b, "csrf_token": token},
        )
        assert resp.status_code == 302
        resp = client.post(
            f"/board/warnings/{w.id}/outcome",
            data={"later_loss_amount": a, "defrauded_after": b, "csrf_token": token},
        )
        assert resp.status_code in (302, 422)

    run()


def test_device_stream_and_receipt_never_500(client, auth, world):
    auth.login("h_off")
    token = auth.csrf("/field/")

    @PROPERTY
    @given(a=odd_text, b=odd_value)
    def run(a, b):
        resp = client.get(
            f"/api/v1/me/stream?last_event_id={a}",
            headers={"Last-Event-ID": server_header(a)},
            buffered=True,
        )
        assert resp.status_code == 200 and resp.get_data(as_text=True).startswith("retry:")
        receipt = post_json(client, token, "/api/v1/push/receipts", {"message_id": b})
        assert_json_refusal(receipt)
        position = post_json(client, token, "/api/v1/me/position", {"lat": b, "lon": a})
        assert_json_refusal(position)

    run()
