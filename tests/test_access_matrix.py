"""Who may read and change what: every route of app.url_map, for every role.

The table below classifies each endpoint. A route nobody classified makes the test fail with its
name, so a new route cannot ship without someone deciding who may use it.

How to read a spec: one letter per role, in ROLES order (spaces are ignored):

    anonymous  officer_a  officer_b  aux_a  chief_a  chief_b  admin

    o  allowed: any answer below 500 except the refusals below (a change sent with an empty body
       may well answer 400/409/422: that still proves the caller got past the access checks)
    L  must log in: 401, or a redirect to /login?next=...
    F  forbidden by role: 403
    N  not found: 404 (a station-A object asked for by station B: existence must not leak)
    ?  not decided yet (only for routes whose code arrives with another branch)

URL parameters are filled from PARAMS with ids of STATION A's objects, so the station-B columns
are exactly the "guessing another station's ids" cases.
"""

import re

import pytest

from fieldapp import clock, dispatch
from fieldapp.extensions import db
from fieldapp.models import ContactAttempt, WorkerHeartbeat

ROLES = ("anonymous", "officer_a", "officer_b", "aux_a", "chief_a", "chief_b", "admin")

PUBLIC = "o o o o o o o"
LOGGED_IN = "L o o o o o o"
BEARER_ONLY = "L L L L L L L"  # session users carry no bearer token
FIELD = "L o o o F F o"  # officers and auxiliaries of any station, their own data
CHIEF = "L F F F o o o"
ADMIN_ONLY = "L F F F F F o"
# A station-A object (warning, offer, attempt, user) behind a role check:
FIELD_A_OBJECT = "L o N o F F o"
CHIEF_A_OBJECT = "L F F F o N o"
ANY_A_OBJECT = "L o N o o N o"

# endpoint -> {"read": spec for GET, "change": spec for POST/PUT/PATCH/DELETE}
MATRIX: dict[str, dict[str, str]] = {
    "api.create_warning": {"change": BEARER_ONLY},
    "api.get_warning": {"read": BEARER_ONLY},
    "api.openapi_json": {"read": PUBLIC},
    "auth.login": {"read": PUBLIC, "change": PUBLIC},
    "auth.logout": {"change": LOGGED_IN},
    "auth.logout_everywhere": {"change": LOGGED_IN},
    "board.index": {"read": CHIEF},
    "core.healthz": {"read": PUBLIC},
    "core.readyz": {"read": PUBLIC},
    "core.index": {"read": PUBLIC},  # sends visitors to /login, users to their home
    "core.manifest": {"read": PUBLIC},
    "core.service_worker": {"read": PUBLIC},
    "core.set_language": {"change": PUBLIC},
    "field.index": {"read": FIELD},
    "desk.import_batch": {"read": CHIEF, "change": CHIEF},
    "desk.new_warning": {"read": CHIEF, "change": CHIEF},
    "static": {"read": PUBLIC},
    # --- the push/worker branch (#3) ---
    "api.set_duty": {"change": FIELD},
    "api.set_position": {"change": FIELD},
    "api.vapid_public_key": {"read": PUBLIC},
    "api.add_subscription": {"change": LOGGED_IN},
    "api.remove_subscription": {"change": LOGGED_IN},
    # The service worker posts receipts without a CSRF token; an empty body is 422 for anyone.
    "api.push_receipt": {"change": PUBLIC},
    "api.test_alert": {"change": LOGGED_IN},
    "api.stream": {"read": LOGGED_IN},
    # --- the board/figures branch (#5) ---
    "board.stream": {"read": CHIEF},
    "board.warning_detail": {"read": CHIEF_A_OBJECT},
    "board.reassign_warning": {"change": CHIEF_A_OBJECT},
    "board.amend_outcome": {"change": CHIEF_A_OBJECT},
    "board.ask_to_join": {"change": CHIEF_A_OBJECT},
    "board.figures_page": {"read": CHIEF},
    "board.figures_csv": {"read": CHIEF},
    # --- the chief's command view (#12) ---
    "board.map_data": {"read": CHIEF},  # scoped to the chief's station: tests/test_board_map.py
    "board.wall": {"read": CHIEF},
    "board.reassign_picker": {"read": CHIEF_A_OBJECT},
    # 12.8: the station's parallel-offer setting (an empty POST is a 422 that changes nothing)
    "board.station_settings": {"read": CHIEF_A_OBJECT, "change": CHIEF_A_OBJECT},
    # --- the field app branch (#4) ---
    "api.sync_entries": {"change": FIELD},  # each entry is then checked on its own
    "field.warning": {"read": ANY_A_OBJECT},
    "field.submit_entry": {"change": FIELD_A_OBJECT},
    "field.confirmations": {"read": FIELD},
    "field.settings": {"read": LOGGED_IN},
    "field.csrf_token": {"read": LOGGED_IN},
    "field.talking_points": {"read": ADMIN_ONLY, "change": ADMIN_ONLY},
    # --- the auth branch: own password, people management (#12 item 5) ---
    "auth.change_password": {"read": LOGGED_IN, "change": LOGGED_IN},
    "people.index": {"read": CHIEF},
    "people.person": {"read": CHIEF_A_OBJECT},
    # An empty POST changes nothing here: the confirm steps need their confirmation fields.
    "people.unlock": {"change": CHIEF_A_OBJECT},
    "people.reset_password": {"read": CHIEF_A_OBJECT, "change": CHIEF_A_OBJECT},
    "people.deactivate": {"read": CHIEF_A_OBJECT, "change": CHIEF_A_OBJECT},
    "people.reactivate": {"change": CHIEF_A_OBJECT},
    "people.change_role": {"change": CHIEF_A_OBJECT},
}

# Endpoints after which the client's session is gone and must be logged in again.
ENDS_SESSION = {"auth.logout", "auth.logout_everywhere"}

# URL parameter name -> value taken from the fixture world (always station A's objects).
PARAMS = {
    "warning_id": lambda w: w["warning"].id,
    "offer_id": lambda w: w["offer"].id,
    "attempt_id": lambda w: w["attempt"].id,
    "user_id": lambda w: w["officer_a"].id,
    "station_id": lambda w: w["station_a"].id,
    "filename": lambda w: "css/app.css",
}
# Parameters naming a station-scoped object: station B must never get "o" for them.
STATION_OBJECT_PARAMS = {"warning_id", "offer_id", "attempt_id", "user_id", "station_id"}

CHANGE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# Live streams (SSE) end after these many seconds here, so every answer can be read whole.
# Add the setting of any new stream endpoint.
SHORT_STREAMS = {
    "STREAM_SECONDS": 0.3,
    "STREAM_KEEPALIVE_S": 0.1,
    "BOARD_STREAM_SECONDS": 0.3,
}


def parse(spec: str) -> dict[str, str]:
    letters = spec.replace(" ", "")
    assert len(letters) == len(ROLES), f"spec {spec!r} needs {len(ROLES)} letters"
    assert set(letters) <= set("oLFN?"), f"unknown letter in {spec!r}"
    return dict(zip(ROLES, letters, strict=True))


def outcome(resp) -> str:
    code = resp.status_code
    if code >= 500:
        return "E"
    if code == 401:
        return "L"
    location = resp.headers.get("Location", "")
    # login_required sends the caller to /login?next=...; a plain redirect to /login (after
    # logging out, or "/" for a visitor) is an ordinary answer.
    if code in (301, 302, 303, 307) and "/login" in location and "next=" in location:
        return "L"
    if code == 403:
        return "F"
    if code == 404:
        return "N"
    return "o"


def rules(app):
    out = []
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        out.append((rule, methods))
    return sorted(out, key=lambda item: item[0].endpoint)


@pytest.fixture
def world(make, fake_clock):
    a = make.station("A", auxiliaries_take_offers=True)
    b = make.station("B", lat=28.2, lon=115.3)
    people = {
        "officer_a": make.user(a, "officer", "m_officer_a", on_duty=True, lat=a.lat, lon=a.lon),
        "officer_b": make.user(b, "officer", "m_officer_b", on_duty=True, lat=b.lat, lon=b.lon),
        "aux_a": make.user(a, "auxiliary", "m_aux_a"),
        "chief_a": make.user(a, "chief", "m_chief_a"),
        "chief_b": make.user(b, "chief", "m_chief_b"),
        "admin": make.user(a, "admin", "m_admin"),
    }
    now = clock.now()
    # One warning accepted by officer_a with an attempt, one with a pending offer to officer_a.
    owned = make.warning(a)
    dispatch.dispatch(owned, now)
    dispatch.accept(owned, people["officer_a"], now)
    attempt = ContactAttempt(
        client_id="m-attempt-1",
        warning_id=owned.id,
        user_id=people["officer_a"].id,
        channel="phone",
        reached=False,
        attempted_at=now,
    )
    db.session.add(attempt)
    offered = make.warning(a)
    offer = dispatch.dispatch(offered, now)
    assert offer is not None and offer.officer_id == people["officer_a"].id
    db.session.add(WorkerHeartbeat(name="matrix", seen_at=now))
    db.session.commit()
    return {
        **people,
        "station_a": a,
        "station_b": b,
        "warning": owned,
        "offered_warning": offered,
        "offer": offer,
        "attempt": attempt,
    }


def _url(rule, world, *, ghost: bool = False) -> str:
    from flask import url_for

    values = {}
    for name in rule.arguments:
        assert name in PARAMS, (
            f"route {rule.rule} ({rule.endpoint}) has URL parameter <{name}>: "
            f"add a fixture value for it to PARAMS in tests/test_access_matrix.py"
        )
        values[name] = 987_654_321 if ghost and name != "filename" else PARAMS[name](world)
    return url_for(rule.endpoint, _external=False, **values)


class Caller:
    """One test client per role, logged in once, logged in again after a logout route."""

    def __init__(self, app, auth_factory, world):
        self.app = app
        self.world = world
        self.clients = {}
        self.auth_factory = auth_factory

    def client(self, role):
        if role not in self.clients:
            client = self.app.test_client()
            auth = self.auth_factory(client)
            if role != "anonymous":
                resp = auth.login(self.world[role].username)
                assert resp.status_code == 302, f"{role} could not log in"
            self.clients[role] = (client, auth)
        return self.clients[role]

    def forget(self, role):
        self.clients.pop(role, None)

    def call(self, role, method, url, endpoint):
        client, auth = self.client(role)
        headers = {}
        kwargs = {}
        if method in CHANGE_METHODS:
            headers["X-CSRFToken"] = auth.csrf("/login" if role == "anonymous" else "/")
            if url.startswith("/api/"):
                kwargs["json"] = {}
            else:
                kwargs["data"] = {}
        # buffered: the whole answer (a short SSE stream too) is read inside the request's own
        # context, as a browser would, before the test looks at it.
        resp = client.open(url, method=method, headers=headers, buffered=True, **kwargs)
        if endpoint in ENDS_SESSION:
            self.forget(role)
        return resp


@pytest.fixture
def caller(app, world):
    from tests.conftest import AuthActions, IsolatedClient

    app.test_client_class = IsolatedClient
    app.config.update(SHORT_STREAMS)
    return Caller(app, AuthActions, world)


def test_every_route_is_classified(app):
    missing = sorted({rule.endpoint for rule, _m in rules(app)} - MATRIX.keys())
    assert not missing, (
        "routes missing from MATRIX in tests/test_access_matrix.py (say who may read/change "
        f"them): {', '.join(missing)}"
    )
    for rule, methods in rules(app):
        spec = MATRIX[rule.endpoint]
        if "GET" in methods:
            assert "read" in spec, f"{rule.endpoint}: GET route needs a 'read' spec"
        if CHANGE_METHODS & set(methods):
            assert "change" in spec, f"{rule.endpoint}: {methods} needs a 'change' spec"


def test_station_b_never_reaches_station_a_objects(app):
    """Guessing another station's ids must be refused for every id-taking route."""
    for rule, _methods in rules(app):
        if not set(rule.arguments) & STATION_OBJECT_PARAMS or rule.endpoint not in MATRIX:
            continue
        for kind, spec in MATRIX[rule.endpoint].items():
            roles = parse(spec)
            for role in ("officer_b", "chief_b"):
                assert roles[role] in "LFN", (
                    f"{rule.endpoint} {kind}: {role} may not reach station A's object"
                )


def test_access_matrix(app, world, caller):
    failures = []
    checked = 0
    for rule, methods in rules(app):
        spec = MATRIX.get(rule.endpoint)
        if spec is None:
            continue  # reported by test_every_route_is_classified
        url = _url(rule, world)
        for method in methods:
            kind = "change" if method in CHANGE_METHODS else "read"
            expected = parse(spec[kind])
            # Order matters only for logout routes: run them last per role.
            for role in ROLES:
                got = outcome(caller.call(role, method, url, rule.endpoint))
                checked += 1
                want = expected[role]
                if want == "?" and got != "E":
                    continue
                if got != want:
                    failures.append(f"{method} {url} ({rule.endpoint}) as {role}: {got} != {want}")
    assert not failures, "access matrix violations:\n" + "\n".join(failures)
    assert checked >= len(rules(app)) * len(ROLES)


def test_ghost_ids_are_404_for_everyone_allowed(app, world, caller):
    """An id that exists nowhere answers 404 to every role that passes the role check."""
    for rule, methods in rules(app):
        if "GET" not in methods or not set(rule.arguments) & STATION_OBJECT_PARAMS:
            continue
        spec = MATRIX.get(rule.endpoint)
        if spec is None or "read" not in spec:
            continue
        url = _url(rule, world, ghost=True)
        for role, want in parse(spec["read"]).items():
            if want in "o":
                got = outcome(caller.call(role, "GET", url, rule.endpoint))
                assert got == "N", f"GET {url} as {role}: {got}, want N"


def test_intake_tokens_are_scoped_to_their_station(make, client, world):
    """The centre's side: a station-B token guessing a station-A warning id gets 404."""
    _row, token_b = make.token(world["station_b"], name="b-only")
    _row, token_a = make.token(world["station_a"], name="a-only")
    _row, token_all = make.token(None, name="prefecture")
    db.session.commit()
    url = f"/api/v1/warnings/{world['warning'].id}"

    def get(token):
        return client.get(url, headers={"Authorization": f"Bearer {token}"}).status_code

    assert get(token_b) == 404
    assert get(token_a) == 200
    assert get(token_all) == 200
    assert get("fa_not-a-token") == 401


def test_matrix_catches_a_wrongly_open_route(app, world, caller):
    """The matrix can fail: a spec claiming officers may read the board is contradicted."""
    url = "/board/"
    got = outcome(caller.call("officer_a", "GET", url, "board.index"))
    assert got == "F"
    assert parse(MATRIX["board.index"]["read"])["officer_a"] == "F"


def test_user_ids_of_other_station_not_listed_on_board(world, caller):
    html = caller.call("chief_b", "GET", "/board/", "board.index").get_data(as_text=True)
    assert not re.search(rf'id="w{world["warning"].id}"', html)
