"""Protections around requests (issue 14, findings 11 and 12): residents' pages audited and
rate-limited, source_refs checked within the station only, phone digits normalised, 413 for
chunked bodies too, no-store on personal pages, bidi controls stripped."""

import io
import json
import threading
from datetime import UTC, datetime
from http.client import HTTPConnection
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from werkzeug.serving import make_server

from fieldapp import create_app
from fieldapp.extensions import db, limiter
from fieldapp.models import Event, Warning
from tests.conftest import _config


@pytest.fixture
def desk(make):
    a = make.station("PA")
    b = make.station("PB", lat=28.2, lon=115.3)
    officer = make.user(a, "officer", "p_off", on_duty=True, lat=a.lat, lon=a.lon)
    chief = make.user(a, "chief", "p_chief")
    chief_b = make.user(b, "chief", "p_chief_b")
    _row, token = make.token(name="centre")
    warning = make.warning(a, status="accepted", owner_id=officer.id)
    db.session.commit()
    return {"a": a, "b": b, "officer": officer, "chief": chief, "chief_b": chief_b, "w": warning}


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


# --- finding 11: reading residents' pages ---------------------------------------------------


@pytest.mark.parametrize("user, page", [("p_off", "field"), ("p_chief", "board")])
def test_each_read_of_a_residents_page_is_an_audit_event(client, auth, desk, user, page):
    auth.login(user)
    path = f"/field/w/{desk['w'].id}" if page == "field" else f"/board/warnings/{desk['w'].id}"
    for _ in range(2):
        assert client.get(path).status_code == 200
    reads = db.session.scalars(sa.select(Event).where(Event.kind == "resident_viewed")).all()
    assert len(reads) == 2
    actor = desk["officer"] if user == "p_off" else desk["chief"]
    for event in reads:
        assert event.actor_id == actor.id and event.station_id == desk["a"].id
        assert event.data == {"warning_id": desk["w"].id, "page": page}
        # Ids only, and kept out of the warning's timeline and the board's feed.
        assert "张三" not in json.dumps(event.data, ensure_ascii=False)
        assert event.warning_id is None


def test_another_stations_page_is_404_and_not_recorded(client, auth, desk):
    auth.login("p_chief_b")
    assert client.get(f"/board/warnings/{desk['w'].id}").status_code == 404
    assert count(Event, Event.kind == "resident_viewed") == 0


def test_bulk_reading_is_limited_per_user_with_a_clear_429(app, client, auth, desk, make):
    app.config["RATELIMIT_ENABLED"] = True
    app.config["RESIDENT_READ_RATE_LIMIT"] = "5/minute"
    limiter.init_app(app)
    limiter.reset()
    try:
        ids = [make.warning(desk["a"]).id for _ in range(7)]
        db.session.commit()
        auth.login("p_chief")
        answers = [client.get(f"/board/warnings/{i}") for i in ids]
        assert [r.status_code for r in answers] == [200] * 5 + [429] * 2
        refused = answers[-1]
        assert "每次打开都有记录" in refused.get_data(as_text=True)
        assert int(refused.headers["Retry-After"]) > 0
        # The limit is per user, and shared by the field page and the board.
        assert client.get(f"/field/w/{ids[0]}").status_code == 429
        auth.logout()
        auth.login("p_off")
        assert client.get(f"/field/w/{ids[0]}").status_code == 200
    finally:
        limiter.reset()


def test_the_limit_is_configurable(tmp_path, monkeypatch):
    from fieldapp import config

    assert config.load(str(tmp_path))["RESIDENT_READ_RATE_LIMIT"] == "30/minute;300/hour"
    monkeypatch.setenv("FIELDAPP_RESIDENT_READ_RATE_LIMIT", "10/minute")
    assert config.load(str(tmp_path))["RESIDENT_READ_RATE_LIMIT"] == "10/minute"


# --- finding 11: source_ref probing across stations -----------------------------------------

CSV_HEAD = "source_ref,person_name,person_phone,fraud_type,station_code\n"


def csv_upload(client, auth, text: str):
    token = auth.csrf("/intake/import")
    data = {"csrf_token": token, "file": (io.BytesIO(text.encode()), "batch.csv")}
    return client.post("/intake/import", data=data, content_type="multipart/form-data")


def hand_entry(client, auth, **fields):
    form = {
        "person_name": "王一",
        "person_phone": "13800000001",
        "fraud_type": "fake_loan",
        **fields,
        "csrf_token": auth.csrf("/intake/new"),
    }
    return client.post("/intake/new", data=form)


def test_source_ref_of_another_station_is_not_revealed(client, auth, desk, make):
    make.warning(desk["b"], source_ref="SECRET-1", token_id=None)
    db.session.commit()
    auth.login("p_chief")
    # Neither path tells chief A that SECRET-1 exists at station B: both simply accept it.
    assert (
        csv_upload(client, auth, CSV_HEAD + "SECRET-1,王一,13800000001,fake_loan,PA\n").status_code
        == 302
    )
    assert hand_entry(client, auth, source_ref="SECRET-2", station_code="PA").status_code == 302
    make.warning(desk["b"], source_ref="SECRET-2", token_id=None)
    db.session.commit()
    assert count(Warning, Warning.source_ref.in_(["SECRET-1", "SECRET-2"])) == 4


def test_source_ref_repeated_within_the_station_is_refused(client, auth, desk):
    auth.login("p_chief")
    assert hand_entry(client, auth, source_ref="S-1", station_code="PA").status_code == 302
    again = hand_entry(client, auth, source_ref="S-1", station_code="PA")
    assert again.status_code == 422 and "本所已录入过" in again.get_data(as_text=True)
    csv = csv_upload(client, auth, CSV_HEAD + "S-1,王一,13800000001,fake_loan,PA\n")
    assert csv.status_code == 422 and "本所已录入过" in csv.get_data(as_text=True)
    assert count(Warning, Warning.source_ref == "S-1") == 1


def test_the_database_refuses_a_racing_duplicate(desk, make):
    make.warning(desk["a"], source_ref="RACE", token_id=None)
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        make.warning(desk["a"], source_ref="RACE", token_id=None)
    db.session.rollback()
    make.warning(desk["b"], source_ref="RACE", token_id=None)  # another station: fine
    db.session.commit()


def test_migration_keeps_the_first_of_earlier_duplicates(empty_db_url, tmp_path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": empty_db_url,
            "TESTING": True,
            "VAPID_PRIVATE_KEY_FILE": str(tmp_path / "v.pem"),
        }
    )
    now = datetime(2026, 11, 25, tzinfo=UTC).replace(tzinfo=None)
    with app.app_context():
        upgrade(revision="0002_board")
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO stations (id, code, name, lat, lon, created_at) "
                    "VALUES (1, 'S', 'S', 1, 1, :now)"
                ),
                {"now": now},
            )
            for wid in (1, 2, 3):
                conn.execute(
                    sa.text(
                        "INSERT INTO warnings (id, source_ref, person_name, person_phone, "
                        "fraud_type, risk_level, station_id, status, received_at) VALUES "
                        "(:id, 'DUP', 'x', '1', 'other', 'high', 1, 'received', :now)"
                    ),
                    {"id": wid, "now": now},
                )
        upgrade()
        with db.engine.connect() as conn:
            refs = conn.execute(sa.text("SELECT source_ref FROM warnings ORDER BY id")).scalars()
            assert list(refs) == ["DUP", "DUP-dup-2", "DUP-dup-3"]
        downgrade(revision="0002_board")
        db.engine.dispose()


# --- finding 12: phone digits ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, stored",
    [
        ("１３８００１３８０００", "13800138000"),
        ("＋８６ １３８－００１３－８０００", "13800138000"),
        ("١٣٨٠٠١٣٨٠٠٠", "13800138000"),
        ("१३८००१३८०००", "13800138000"),
        ("０７９１－８８８８８８８", "07918888888"),
    ],
)
def test_phone_digits_of_any_script_are_stored_as_ascii(client, desk, make, raw, stored):
    _row, token = make.token(name="phones")
    db.session.commit()
    body = make.intake_body(person_phone=raw, station_code="PA")
    resp = client.post("/api/v1/warnings", json=body, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201
    assert db.session.get(Warning, resp.get_json()["id"]).person_phone == stored


def test_phone_that_is_not_a_number_is_still_refused(client, desk, make):
    _row, token = make.token(name="phones")
    db.session.commit()
    for raw in ("一三八", "13800138000²x", "ⅠⅡⅢ45"):
        body = make.intake_body(person_phone=raw, station_code="PA")
        resp = client.post(
            "/api/v1/warnings", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 422 and "person_phone" in resp.get_json()["errors"]


# --- finding 12: chunked bodies -------------------------------------------------------------


@pytest.fixture
def server(app, desk, make):
    """The app on a real threaded HTTP server (chunked bodies reach it as a server sends them)."""
    _row, token = make.token(name="chunked")
    db.session.commit()
    served = create_app(_config(app.config["SQLALCHEMY_DATABASE_URI"], Path(app.instance_path)))
    http = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield http.server_port, token
    http.shutdown()
    thread.join()


def _chunked_post(port: int, path: str, body: bytes, headers: dict) -> int:
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", path)
    for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
        conn.putheader(name, value)
    conn.endheaders()
    for start in range(0, len(body), 8192):
        piece = body[start : start + 8192]
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    conn.send(b"0\r\n\r\n")
    status = conn.getresponse().status
    conn.close()
    return status


def test_chunked_intake_body_over_64_kib_is_413(server, make):
    port, token = server
    body = make.intake_body(station_code="PA", note="x" * 100)
    body["padding"] = "y" * (70 * 1024)  # unknown fields are ignored: only the size is wrong
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert _chunked_post(port, "/api/v1/warnings", json.dumps(body).encode(), headers) == 413
    small = make.intake_body(station_code="PA")
    assert _chunked_post(port, "/api/v1/warnings", json.dumps(small).encode(), headers) == 201


def test_chunked_body_over_the_limit_in_the_test_client_too(client, desk, make):
    _row, token = make.token(name="chunked")
    db.session.commit()
    body = json.dumps({**make.intake_body(station_code="PA"), "pad": "y" * 70_000}).encode()
    resp = client.post(
        "/api/v1/warnings",
        input_stream=io.BytesIO(body),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
        # What a server that reads chunked bodies (gunicorn, werkzeug's) says about the stream.
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert resp.status_code == 413 and "error" in resp.get_json()


# --- finding 12: no-store -------------------------------------------------------------------


def test_personal_pages_are_no_store(client, auth, desk):
    w = desk["w"].id
    auth.login("p_off")
    for path in ("/field/", f"/field/w/{w}", "/field/confirmations"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    auth.logout()
    auth.login("p_chief")
    for path in (
        "/board/",
        f"/board/warnings/{w}",
        "/board/figures",
        "/board/figures.csv",
        "/intake/new",
    ):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_feedback_json_is_no_store(client, desk, make):
    _row, token = make.token(name="fb")
    db.session.commit()
    body = make.intake_body(station_code="PA")
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/v1/warnings", json=body, headers=headers)
    assert created.headers["Cache-Control"] == "no-store"
    feedback = client.get(f"/api/v1/warnings/{created.get_json()['id']}", headers=headers)
    assert feedback.headers["Cache-Control"] == "no-store"


def test_static_files_and_the_service_worker_keep_their_caching(client):
    css = client.get("/static/css/app.css")
    assert "no-store" not in css.headers.get("Cache-Control", "")
    assert client.get("/sw.js").headers["Cache-Control"] == "no-cache"


def test_service_worker_saves_officer_pages_despite_no_store():
    """The offline copy is Cache Storage, which HTTP caching headers do not govern: the
    worker must not read no-store as "never save offline", or offline pages would be lost."""
    sw = (Path(__file__).resolve().parent.parent / "static" / "sw.js").read_text()
    assert "no-store/.test" not in sw


# --- finding 12: bidi controls --------------------------------------------------------------

BIDI = "\u202e\u2066\u200f\u061c"


def test_bidi_controls_are_stripped_from_intake_and_sync(client, auth, desk, make):
    _row, token = make.token(name="bidi")
    db.session.commit()
    body = make.intake_body(
        station_code="PA",
        person_name=f"张{BIDI}三",
        address="东岭村\u202e21号\u202c",
        note=f"{BIDI}exe.txt",
    )
    resp = client.post("/api/v1/warnings", json=body, headers={"Authorization": f"Bearer {token}"})
    warning = db.session.get(Warning, resp.get_json()["id"])
    assert (warning.person_name, warning.address, warning.note) == ("张三", "东岭村21号", "exe.txt")
    auth.login("p_off")
    entry = {
        "client_id": "bidi-entry-0001",
        "kind": "attempt",
        "warning_id": desk["w"].id,
        "data": {"channel": "phone", "reached": False, "note": "未接\u202e通"},
    }
    [result] = auth.post_json("/api/v1/sync", {"entries": [entry]}).get_json()["results"]
    assert result["status"] == "applied"
    from fieldapp.models import ContactAttempt

    assert db.session.get(ContactAttempt, result["attempt_id"]).note == "未接通"


def test_bidi_only_name_is_empty_and_refused(client, desk, make):
    _row, token = make.token(name="bidi")
    db.session.commit()
    body = make.intake_body(station_code="PA", person_name="\u202e\u202c")
    resp = client.post("/api/v1/warnings", json=body, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 422 and "person_name" in resp.get_json()["errors"]


def test_bidi_controls_are_stripped_from_hand_entry_and_talking_points(client, auth, desk, make):
    auth.login("p_chief")
    assert hand_entry(client, auth, person_name="李\u202e四", station_code="PA").status_code == 302
    assert count(Warning, Warning.person_name == "李四") == 1
    admin = make.user(desk["a"], "admin", "p_admin")
    db.session.commit()
    auth.logout()
    auth.login(admin.username)
    token = auth.csrf("/field/talking-points")
    resp = client.post(
        "/field/talking-points",
        data={"fake_loan-zh": "不要\u202e转账", "fake_loan-en": "", "csrf_token": token},
    )
    assert resp.status_code == 302
    from fieldapp.models import TalkingPoints

    assert db.session.get(TalkingPoints, "fake_loan").text_zh == "不要转账"
    bad = client.post(
        "/field/talking-points",
        data={"fake_loan-zh": "a\x00b", "csrf_token": token},
    )
    assert bad.status_code == 422
