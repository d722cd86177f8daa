"""Fuzz every JSON operation of the OpenAPI document with schemathesis.

The document is read from the running app (GET /api/v1/openapi.json), so an operation another
module registers is fuzzed without touching this file. Each operation gets valid (positive) and
invalid (negative) generated requests, sent in-process through the test client; every answer must
be a documented status with a body matching the documented schema, and never a 500. Then the
document's links drive stateful sequences (a new warning then its feedback, a test alert then
its receipt, a subscription then its removal). The document itself must raise no schemathesis
warning, and valid generated data must mostly be accepted: a schema looser than the checks
shows as a low share of accepted positive cases.

Authentication: operations whose `security` names `bearer` get an intake token; every other
operation runs as a logged-in officer (session cookie + X-CSRFToken). SESSION_ROLE overrides the
role per operationId (e.g. a chief-only board endpoint).
"""

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from fieldapp.extensions import db
from tests import factories
from tests.conftest import AuthActions, IsolatedClient

# Modest, so the whole file runs in well under a minute per database; raise locally to dig.
# One test worker runs the whole file, so test_fuzz_report sees the fuzz tests' counts
# (scripts/test runs pytest-xdist with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("fuzz")
EXAMPLES = int(os.environ.get("FIELDAPP_FUZZ_EXAMPLES", "15"))
# Share of valid generated requests an operation must accept (2xx among the answers that judge
# the data: 400, 409 and 422 refuse it; 401, 403, 404 and 429 say nothing about it).
# Schemathesis warns below 0.2; ours is stricter.
MIN_VALID_RATE = 0.5

# operationId -> role of the logged-in user for session operations (default: officer).
SESSION_ROLE: dict[str, str] = {}

POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [*POSITIVE_CHECKS, negative_data_rejection]


class BufferedClient(IsolatedClient):
    """Reads every answer whole inside its own request context (short SSE streams included)."""

    def open(self, *args, **kwargs):
        kwargs["buffered"] = True
        return super().open(*args, **kwargs)


CASE_COUNTS: dict[str, int] = {}
NOTHING_TO_NEGATE: list[str] = []
STATUSES: dict[str, dict[int, int]] = {}


@pytest.fixture
def world(make, fake_clock):
    """Two stations with people, warnings and a token, so real ids exist to be fuzzed."""
    a = make.station("A")
    b = make.station("B", lat=28.2, lon=115.3)
    people = {
        "officer": make.user(a, "officer", "fz_officer", on_duty=True, lat=a.lat, lon=a.lon),
        "auxiliary": make.user(a, "auxiliary", "fz_aux"),
        "chief": make.user(a, "chief", "fz_chief"),
        "admin": make.user(a, "admin", "fz_admin"),
    }
    make.user(b, "officer", "fz_officer_b", on_duty=True, lat=b.lat, lon=b.lon)
    _row, token = make.token()
    warnings = [make.warning(a), make.warning(b)]
    db.session.commit()
    return {"token": token, "people": people, "warning_ids": [w.id for w in warnings]}


def _schema(client, modes: list[str] | None = None):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    # Authentication is ours to supply (a real token, a real session): schemathesis must not
    # generate or negate the security schemes' header and cookie itself.
    generation: dict = {"with-security-parameters": False}
    if modes:
        generation["mode"] = modes[0]
    config = schemathesis.Config.from_dict({"generation": generation})
    return schemathesis.openapi.from_dict(resp.get_json(), config=config)


def _operations(schema):
    out = []
    for result in schema.get_all_operations():
        out.append(result.ok())
    return out


def _uses_bearer(operation) -> bool:
    security = operation.definition.raw.get("security") or []
    return any("bearer" in item for item in security)


def _path_overrides(operation, ids: dict[str, list[int]]):
    """Real ids for path parameters half of the time, generated ones otherwise."""
    names = re.findall(r"{(\w+)}", operation.path)
    if not names:
        return st.just(None)
    fixed = {}
    for name in names:
        fixed[name] = st.sampled_from(ids.get(name) or ids["default"])
    return st.one_of(st.just(None), st.fixed_dictionaries(fixed))


def _make_realistic(case, data) -> None:
    """Name stations that exist, as schemathesis' test data would.

    The document cannot list the stations (they are data, not API); everything else a warning
    needs (phone numbers, amounts in fen, times) the schema itself describes.
    """
    body = case.body
    if isinstance(body, dict) and "source_ref" in body:
        body["station_code"] = data.draw(st.sampled_from(["A", "B"]))


def _headers_for(operation, world, auth) -> dict[str, str]:
    if _uses_bearer(operation):
        return {"Authorization": f"Bearer {world['token']}"}
    return {"X-CSRFToken": auth.csrf("/")}


def _fuzz(operation, mode, world, client, auth, app):
    from tests.test_access_matrix import SHORT_STREAMS

    app.config.update(SHORT_STREAMS)
    label = f"{operation.method.upper()} {operation.path} [{mode.value}]"
    if not _uses_bearer(operation):
        role = SESSION_ROLE.get(operation.definition.raw.get("operationId", ""), "officer")
        assert auth.login(world["people"][role].username).status_code == 302
    headers = _headers_for(operation, world, auth)
    # The document declares the session cookie as an apiKey scheme, so schemathesis would send
    # a made-up `session` cookie; the real one of the logged-in officer must win.
    cookie = client.get_cookie("session")
    cookies = {"session": cookie.value} if cookie is not None else None
    ids = {"warning_id": world["warning_ids"], "default": world["warning_ids"]}
    checks = NEGATIVE_CHECKS if mode == GenerationMode.NEGATIVE else POSITIVE_CHECKS
    count = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data):
        nonlocal count
        path_params = data.draw(_path_overrides(operation, ids))
        kwargs = {"path_parameters": path_params} if path_params else {}
        case = data.draw(operation.as_strategy(generation_mode=mode, **kwargs))
        if mode == GenerationMode.POSITIVE:
            _make_realistic(case, data)
        response = case.call(app=app, session=client, headers=headers, cookies=cookies)
        count += 1
        STATUSES.setdefault(label, {}).setdefault(response.status_code, 0)
        STATUSES[label][response.status_code] += 1
        case.validate_response(response, checks=checks, headers=headers)

    try:
        run()
    except Unsatisfiable:
        # No parameter and no body: a request cannot be made invalid, nothing to negate.
        if mode != GenerationMode.NEGATIVE or count:
            raise
        NOTHING_TO_NEGATE.append(label)
        return
    CASE_COUNTS[label] = CASE_COUNTS.get(label, 0) + count


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_api_operation_survives_fuzzing(world, app, mode):
    app.test_client_class = BufferedClient
    client = app.test_client()
    auth = AuthActions(client)
    schema = _schema(client)
    operations = _operations(schema)
    assert operations, "the OpenAPI document lists no operation"
    for operation in operations:
        _fuzz(operation, mode, world, client, auth, app)
    assert all(CASE_COUNTS.values())
    if mode == GenerationMode.POSITIVE:
        rates = {label: _valid_rate(counts) for label, counts in STATUSES.items()}
        low = {k: v for k, v in rates.items() if "[positive]" in k and v < MIN_VALID_RATE}
        assert not low, f"valid generated data refused (schema looser than the checks): {low}"


def _valid_rate(counts: dict[int, int]) -> float:
    accepted = sum(n for code, n in counts.items() if 200 <= code < 300)
    refused = sum(n for code, n in counts.items() if code in (400, 409, 413, 415, 422))
    return accepted / (accepted + refused) if accepted + refused else 1.0


def test_document_raises_no_schemathesis_warning(client):
    """Unsupported patterns, unresolvable references, unused auth schemes: none."""
    schema = _schema(client)
    warnings = [f"{w.kind}: {w.message}" for w in schema.iter_schema_warnings()]
    assert warnings == []


def test_every_answer_is_documented(client):
    """Answers that the framework gives around the view are in the document too."""
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            codes = set(op["responses"])
            security = {k for item in op.get("security", []) for k in item}
            if security:
                assert "401" in codes, (path, method)
            if "session" in security:
                assert "403" in codes, (path, method)  # a user on a one-time password
            if "session" in security and method != "get" and op["operationId"] != "pushReceipt":
                assert "400" in codes, (path, method)  # CSRF
            if "requestBody" in op:
                assert {"413", "422"} <= codes, (path, method)
            if "{" in path:
                assert "404" in codes, (path, method)


def test_stateful_links(world, app):
    """Sequences that follow the document's links, each step checked like a single call."""
    from tests.test_access_matrix import SHORT_STREAMS

    app.config.update(SHORT_STREAMS)
    app.test_client_class = BufferedClient
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.login(world["people"]["officer"].username).status_code == 302
    schema = _schema(client, modes=["positive"])
    assert any(
        "links" in answer
        for op in schema.raw_schema["paths"].values()
        for method in op.values()
        for answer in method["responses"].values()
    )
    headers = {"Authorization": f"Bearer {world['token']}", "X-CSRFToken": auth.csrf("/")}
    cookies = {"session": client.get_cookie("session").value}
    steps: list[str] = []

    class Machine(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"app": app, "session": client, "headers": headers, "cookies": cookies}

        def before_call(self, case):
            if isinstance(case.body, dict) and "source_ref" in case.body:
                case.body["station_code"] = "A"

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            steps.append(case.operation.label)
            case.validate_response(response, checks=POSITIVE_CHECKS, headers=headers)

    Machine.run(
        settings=settings(
            max_examples=max(EXAMPLES // 2, 5),
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert "GET /api/v1/warnings/{warning_id}" in steps


def test_fuzz_report(capsys):
    """Every operation of the document was fuzzed in both modes (when the fuzz tests ran)."""
    if not CASE_COUNTS:
        pytest.skip("the fuzz tests above did not run in this session")
    with capsys.disabled():
        total = sum(CASE_COUNTS.values())
        print(f"\nfuzzed {total} cases over {len(CASE_COUNTS)} operation/mode pairs")
        for label, n in sorted(CASE_COUNTS.items()):
            print(f"  {n:5d}  {label}  {STATUSES.get(label)}")
        for label in NOTHING_TO_NEGATE:
            print(f"      -  {label} (no parameter or body to make invalid)")
    operations = {label.rsplit(" [", 1)[0] for label in [*CASE_COUNTS, *NOTHING_TO_NEGATE]}
    for operation in operations:
        assert CASE_COUNTS.get(f"{operation} [positive]"), operation
        negative = f"{operation} [negative]"
        assert CASE_COUNTS.get(negative) or negative in NOTHING_TO_NEGATE, operation


__all__ = ["factories"]


def test_a_user_on_a_one_time_password_gets_the_documented_403_everywhere(client, make):
    """Every session operation answers 403 password_change_required, as the document says,
    until the user has chosen a new password; the stream's per-user cap is its 429."""
    station = make.station()
    user = make.user(station, "officer", "otp1", must_change_password=True)
    db.session.commit()
    doc = client.get("/api/v1/openapi.json").get_json()
    auth = AuthActions(client)
    auth.login(user.username)
    headers = {"X-CSRFToken": auth.csrf("/")}  # the change-password page carries one
    seen = 0
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            security = {k for item in op.get("security", []) for k in item}
            if "session" not in security:
                continue
            url = path.replace("{warning_id}", "1").replace("{id}", "1")
            resp = client.open(url, method=method.upper(), json={}, headers=headers, buffered=True)
            assert resp.status_code == 403, (path, method, resp.status_code)
            assert resp.get_json()["code"] == "password_change_required"
            assert "403" in op["responses"]
            seen += 1
    assert seen >= 6
    assert "429" in doc["paths"]["/api/v1/me/stream"]["get"]["responses"]
