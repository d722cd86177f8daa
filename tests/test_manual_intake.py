"""A chief enters a warning by hand or uploads a CSV: per-field/per-row errors, all or nothing."""

import io

import pytest
import sqlalchemy as sa

from fieldapp.extensions import db
from fieldapp.models import Event, Warning


@pytest.fixture
def desk(make):
    a = make.station("CG", lat=27.8170, lon=114.9230)
    b = make.station("QS", lat=27.9020, lon=114.7810)
    make.user(a, "officer", "mj1", on_duty=True, lat=27.818, lon=114.924)
    chief = make.user(a, "chief", "chief_cg")
    make.user(a, "admin", "root")
    db.session.commit()
    return {"a": a, "b": b, "chief": chief}


def count_warnings() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Warning))


def form(**values):
    base = {
        "person_name": "周七",
        "person_phone": "13912345678",
        "fraud_type": "impersonating_boss",
        "risk_level": "high",
        "amount_at_risk": "100000",
        "station_code": "CG",
        "lat": "",
        "lon": "",
        "address": "城关镇解放路8号",
    }
    base.update(values)
    return base


def test_chief_enters_a_warning_by_hand(desk, auth, client):
    auth.login("chief_cg")
    data = form(csrf_token=auth.csrf("/intake/new"))
    resp = client.post("/intake/new", data=data)
    assert resp.status_code == 302
    warning = db.session.scalar(sa.select(Warning))
    assert warning.created_by_id == desk["chief"].id and warning.token_id is None
    assert warning.status == "offered"
    event = db.session.scalar(sa.select(Event).where(Event.kind == "received"))
    assert event.data["source"] == "manual" and event.actor_id == desk["chief"].id


def test_bad_form_shows_field_errors_and_saves_nothing(desk, auth, client):
    auth.login("chief_cg")
    data = form(
        person_phone="not a phone", amount_at_risk="-5", csrf_token=auth.csrf("/intake/new")
    )
    resp = client.post("/intake/new", data=data)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "请更正" in html and 'aria-invalid="true"' in html
    assert "周七" in html  # what was typed is kept
    assert count_warnings() == 0


def test_chief_cannot_enter_for_another_station(desk, auth, client):
    auth.login("chief_cg")
    resp = client.post(
        "/intake/new", data=form(station_code="QS", csrf_token=auth.csrf("/intake/new"))
    )
    assert resp.status_code == 422
    assert count_warnings() == 0


def test_form_needs_csrf(desk, auth, client):
    auth.login("chief_cg")
    assert client.post("/intake/new", data=form()).status_code == 400
    assert count_warnings() == 0


CSV_OK = (
    "source_ref,person_name,person_phone,fraud_type,risk_level,amount_at_risk,lat,lon,station_code\n"
    "B-1,王一,13800000001,fake_loan,high,20000,27.82,114.93,\n"
    "B-2,王二,13800000002,order_brushing,medium,,,,CG\n"
)


def upload(client, auth, text: str, encoding: str = "utf-8-sig"):
    token = auth.csrf("/intake/import")
    return client.post(
        "/intake/import",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode(encoding)), "batch.csv")},
        content_type="multipart/form-data",
    )


def test_csv_batch_is_imported_whole(desk, auth, client):
    auth.login("chief_cg")
    resp = upload(client, auth, CSV_OK)
    assert resp.status_code == 302
    assert count_warnings() == 2
    sources = {
        e.data["source"]
        for e in db.session.scalars(sa.select(Event).where(Event.kind == "received"))
    }
    assert sources == {"csv"}


def test_csv_in_gb18030_from_excel(desk, auth, client):
    auth.login("chief_cg")
    assert upload(client, auth, CSV_OK, encoding="gb18030").status_code == 302
    names = set(db.session.scalars(sa.select(Warning.person_name)))
    assert names == {"王一", "王二"}


def test_csv_with_one_bad_row_imports_nothing(desk, auth, client):
    auth.login("chief_cg")
    bad = (
        CSV_OK
        + "B-3,王三,abc,fake_loan,high,10,27.8,114.9,\n"
        + "B-4,王四,13800000004,nope,,,,,CG\n"
    )
    resp = upload(client, auth, bad)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "未导入任何数据" in html
    assert "<td>4</td>" in html and "<td>5</td>" in html  # line numbers of the bad rows
    assert "person_phone" in html and "fraud_type" in html
    assert count_warnings() == 0


def test_csv_duplicates_in_file_and_against_earlier_import(desk, auth, client):
    auth.login("chief_cg")
    dup = CSV_OK + "B-1,王一,13800000001,fake_loan,high,20000,27.82,114.93,\n"
    assert upload(client, auth, dup).status_code == 422
    assert count_warnings() == 0
    assert upload(client, auth, CSV_OK).status_code == 302
    again = upload(client, auth, CSV_OK)
    assert again.status_code == 422 and "已录入过" in again.get_data(as_text=True)
    assert count_warnings() == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("person_name,fraud_type\n王,fake_loan\n", "缺少列"),
        ("person_name,person_phone,fraud_type\n", "没有数据行"),
    ],
)
def test_csv_file_level_errors(desk, auth, client, text, message):
    auth.login("chief_cg")
    resp = upload(client, auth, text)
    assert resp.status_code == 422 and message in resp.get_data(as_text=True)


def test_csv_not_text(desk, auth, client):
    auth.login("chief_cg")
    token = auth.csrf("/intake/import")
    resp = client.post(
        "/intake/import",
        data={"csrf_token": token, "file": (io.BytesIO(b"\x81\x30\xff\xff\x00\xfe"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    assert count_warnings() == 0


def test_csv_upload_without_file(desk, auth, client):
    auth.login("chief_cg")
    resp = client.post("/intake/import", data={"csrf_token": auth.csrf("/intake/import")})
    assert resp.status_code == 422


def test_officer_cannot_import(desk, auth, client):
    auth.login("mj1")
    assert client.get("/intake/import").status_code == 403
