"""POST/GET /api/v1/warnings as the intake contract describes it, and every bad form of input."""

import json

import pytest
import sqlalchemy as sa

from fieldapp.extensions import db, limiter
from fieldapp.models import Event, Offer, OutboxMessage, Warning


@pytest.fixture
def setup(make):
    station = make.station("CG", lat=27.8170, lon=114.9230)
    far = make.station("QS", lat=27.9020, lon=114.7810)
    officer = make.user(station, "officer", "near", on_duty=True, lat=27.8200, lon=114.9300)
    row, plaintext = make.token(name="centre")
    db.session.commit()
    return {"station": station, "far": far, "officer": officer, "token": row, "plain": plaintext}


def post(client, body, token, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    if isinstance(body, (bytes, str)):
        return client.post("/api/v1/warnings", data=body, headers=headers, **kw)
    return client.post("/api/v1/warnings", json=body, headers=headers, **kw)


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_new_warning_is_created_dispatched_and_logged(client, setup, make):
    body = make.intake_body(source_ref="C-1")
    resp = post(client, body, setup["plain"])
    assert resp.status_code == 201
    data = resp.get_json()
    assert set(data) >= {"id", "status", "url"}
    assert data["url"].endswith(f"/api/v1/warnings/{data['id']}")
    warning = db.session.get(Warning, data["id"])
    assert warning.person_phone == "13800138000"  # +86 and separators normalised
    assert warning.station.code == "CG"  # nearest station to the location
    assert warning.status == "offered" and data["status"] == "offered"
    offer = db.session.scalar(sa.select(Offer))
    assert offer.officer_id == setup["officer"].id
    kinds = [e.kind for e in db.session.scalars(sa.select(Event).order_by(Event.id))]
    assert kinds[:2] == ["received", "offered"]
    assert count(OutboxMessage) >= 1


def test_station_code_without_location(client, setup, make):
    body = make.intake_body(location=None, station_code="QS")
    resp = post(client, body, setup["plain"])
    assert resp.status_code == 201
    warning = db.session.get(Warning, resp.get_json()["id"])
    assert warning.station.code == "QS" and warning.lat is None
    # Nobody on duty at QS: unassigned, and said so.
    assert warning.status == "unassigned"


def test_repeat_with_same_content_creates_nothing(client, setup, make):
    body = make.intake_body(source_ref="C-2")
    first = post(client, body, setup["plain"])
    again = post(client, body, setup["plain"])
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["duplicate"] is True and again.get_json()["conflict"] is False
    assert count(Warning) == 1


def test_repeat_with_different_content_keeps_the_first(client, setup, make):
    first = post(client, make.intake_body(source_ref="C-3", person_name="王五"), setup["plain"])
    again = post(client, make.intake_body(source_ref="C-3", person_name="赵六"), setup["plain"])
    assert again.status_code == 200
    data = again.get_json()
    assert data["id"] == first.get_json()["id"] and data["conflict"] is True
    assert "第一次" in data["message"]
    assert db.session.get(Warning, data["id"]).person_name == "王五"
    assert count(Warning) == 1


def test_same_source_ref_from_another_token_is_a_new_warning(client, setup, make):
    _row, other = make.token(name="other centre")
    db.session.commit()
    assert post(client, make.intake_body(source_ref="X"), setup["plain"]).status_code == 201
    assert post(client, make.intake_body(source_ref="X"), other).status_code == 201
    assert count(Warning) == 2


@pytest.mark.parametrize("token", [None, "", "fa_wrong", "x" * 500])
def test_missing_or_wrong_token(client, setup, make, token):
    resp = post(client, make.intake_body(), token)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(Warning) == 0


def test_revoked_token_is_refused(client, setup, make):
    setup["token"].revoked_at = setup["token"].created_at
    db.session.commit()
    assert post(client, make.intake_body(), setup["plain"]).status_code == 401


def test_token_is_stored_only_as_a_hash(setup):
    assert setup["plain"] not in setup["token"].token_hash
    assert len(setup["token"].token_hash) == 64


BAD_FIELDS = [
    # (field, value, expected error key)
    ("source_ref", None, "source_ref"),
    ("source_ref", "", "source_ref"),
    ("source_ref", "x" * 65, "source_ref"),
    ("source_ref", 123, "source_ref"),
    ("person_name", None, "person_name"),
    ("person_name", "名" * 65, "person_name"),
    ("person_name", ["a"], "person_name"),
    ("person_phone", None, "person_phone"),
    ("person_phone", "call me maybe", "person_phone"),
    ("person_phone", "138abc38000", "person_phone"),
    ("person_phone", "12", "person_phone"),
    ("person_phone", 13800138000, "person_phone"),
    ("fraud_type", None, "fraud_type"),
    ("fraud_type", "alien_abduction", "fraud_type"),
    ("fraud_type", 3, "fraud_type"),
    ("risk_level", "extreme", "risk_level"),
    ("amount_at_risk", -1, "amount_at_risk"),
    ("amount_at_risk", "lots", "amount_at_risk"),
    ("amount_at_risk", 1e15, "amount_at_risk"),
    ("amount_at_risk", 10.123, "amount_at_risk"),
    ("location", {"lat": 91, "lon": 114.9}, "location.lat"),
    ("location", {"lat": -91, "lon": 114.9}, "location.lat"),
    ("location", {"lat": 27.8, "lon": 181}, "location.lon"),
    ("location", {"lat": 27.8, "lon": -181}, "location.lon"),
    ("location", {"lat": "north", "lon": 114.9}, "location.lat"),
    ("location", {"lon": 114.9}, "location.lat"),
    ("location", {"lat": 27.8, "lon": 114.9, "accuracy_m": -5}, "location.accuracy_m"),
    ("location", "27.8,114.9", "location"),
    ("station_code", "NOPE", "station_code"),
    ("address", "路" * 201, "address"),
    ("suspect_account", "9" * 65, "suspect_account"),
    ("issued_at", "yesterday", "issued_at"),
    ("issued_at", "2026-11-25T08:30:00", "issued_at"),
    ("note", "注" * 501, "note"),
]


@pytest.mark.parametrize(("field", "value", "key"), BAD_FIELDS)
def test_bad_field_is_refused_with_a_message_for_that_field(client, setup, make, field, value, key):
    body = make.intake_body()
    if value is None:
        body.pop(field, None)
    else:
        body[field] = value
    resp = post(client, body, setup["plain"])
    assert resp.status_code == 422, resp.get_json()
    errors = resp.get_json()["errors"]
    assert key in errors, errors
    assert errors[key]  # a sentence, not an empty string
    assert count(Warning) == 0 and count(Event) == 0


def test_neither_location_nor_station(client, setup, make):
    resp = post(client, make.intake_body(location=None), setup["plain"])
    assert resp.status_code == 422
    assert "location" in resp.get_json()["errors"]


def test_errors_in_english_when_asked(client, setup, make):
    body = make.intake_body(fraud_type="nope")
    resp = post(client, body, setup["plain"], headers={"Accept-Language": "en"})
    assert "Must be one of" in resp.get_json()["errors"]["fraud_type"]
    resp = post(client, body, setup["plain"])
    assert "必须是以下之一" in resp.get_json()["errors"]["fraud_type"]


def test_several_errors_reported_together(client, setup, make):
    body = make.intake_body(person_phone="abc", fraud_type="x", amount_at_risk=-3)
    errors = post(client, body, setup["plain"]).get_json()["errors"]
    assert {"person_phone", "fraud_type", "amount_at_risk"} <= set(errors)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"[]", b"null", b'"text"', b"\xff\xfe", b'{"a": 1'],
)
def test_malformed_json(client, setup, raw):
    resp = post(client, raw, setup["plain"], headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    assert resp.get_json()["errors"]
    assert count(Warning) == 0


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type(client, setup, make, ctype):
    raw = json.dumps(make.intake_body())
    headers = {"Content-Type": ctype} if ctype else {}
    resp = post(client, raw, setup["plain"], headers=headers)
    assert resp.status_code == 422
    assert "body" in resp.get_json()["errors"]
    assert count(Warning) == 0


def test_huge_body(client, setup, make):
    body = make.intake_body(note="x" * 70_000)
    resp = post(client, body, setup["plain"])
    assert resp.status_code == 413
    assert resp.get_json()["error"]
    assert count(Warning) == 0


def test_unknown_fields_are_ignored(client, setup, make):
    resp = post(client, make.intake_body(extra_field="whatever"), setup["plain"])
    assert resp.status_code == 201


def test_scoped_token_only_for_its_station(client, setup, make):
    _row, scoped = make.token(station=setup["far"], name="QS only")
    db.session.commit()
    resp = post(client, make.intake_body(station_code="CG", location=None), scoped)
    assert resp.status_code == 422 and "station_code" in resp.get_json()["errors"]
    # With a location only, the scoped token's station is the jurisdiction.
    resp = post(client, make.intake_body(), scoped)
    assert resp.status_code == 201
    assert db.session.get(Warning, resp.get_json()["id"]).station.code == "QS"


def test_rate_limit(app, client, setup, make):
    app.config["RATELIMIT_ENABLED"] = True
    limiter.enabled = True
    limiter.init_app(app)
    app.config["INTAKE_RATE_LIMIT"] = "3/minute"
    try:
        codes = [post(client, make.intake_body(), setup["plain"]).status_code for _ in range(5)]
    finally:
        limiter.enabled = False
    assert codes[:3] == [201, 201, 201]
    assert codes[3:] == [429, 429]
    assert count(Warning) == 3


def test_feedback_shows_status_officer_attempts_outcome(client, setup, make):
    created = post(client, make.intake_body(source_ref="F-1"), setup["plain"]).get_json()
    resp = client.get(created["url"], headers={"Authorization": f"Bearer {setup['plain']}"})
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["source_ref"] == "F-1" and data["status"] == "offered"
    assert data["attempts"] == [] and data["outcome"] is None and data["officer"] is None
    assert "person_name" not in data and "person_phone" not in data


def test_feedback_needs_the_token_and_hides_other_stations(client, setup, make):
    created = post(client, make.intake_body(), setup["plain"]).get_json()
    assert client.get(created["url"]).status_code == 401
    _row, scoped = make.token(station=setup["far"], name="QS only")
    db.session.commit()
    resp = client.get(created["url"], headers={"Authorization": f"Bearer {scoped}"})
    assert resp.status_code == 404
    resp = client.get(
        "/api/v1/warnings/999999", headers={"Authorization": f"Bearer {setup['plain']}"}
    )
    assert resp.status_code == 404


def test_openapi_document_comes_from_the_schema(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    post_op = doc["paths"]["/api/v1/warnings"]["post"]
    assert {"201", "200", "401", "413", "422", "429"} <= set(post_op["responses"])
    schema = doc["components"]["schemas"]["WarningIn"]
    assert set(schema["required"]) == {"source_ref", "person_name", "person_phone", "fraud_type"}
    fraud = schema["properties"]["fraud_type"]
    assert "alien_abduction" not in json.dumps(fraud) and "fake_loan" in json.dumps(fraud)


def test_concurrent_repeats_create_one_warning(app, setup, make):
    """Ten simultaneous sends of the same source_ref (real connections): one warning."""
    import threading

    body = make.intake_body(source_ref="RACE-1")
    codes: list[int] = []
    barrier = threading.Barrier(10)

    def send():
        client = app.test_client()
        barrier.wait()
        resp = client.post(
            "/api/v1/warnings", json=body, headers={"Authorization": f"Bearer {setup['plain']}"}
        )
        codes.append(resp.status_code)

    from flask.globals import _cv_app

    token = _cv_app.set(None)  # each thread's request gets its own app context and session
    try:
        threads = [threading.Thread(target=send) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        _cv_app.reset(token)
    assert sorted(codes) == [200] * 9 + [201]
    assert count(Warning) == 1
