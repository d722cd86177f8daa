"""Fuzz every JSON operation of the OpenAPI document with schemathesis.

The document is read from the running app (GET /api/v1/openapi.json), so an operation another
module registers is fuzzed without touching this file. Each operation gets valid (positive) and
invalid (negative) generated requests, sent in-process through the test client; every answer must
be a documented status with a body matching the documented schema, and never a 500.

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
EXAMPLES = int(os.environ.get("FIELDAPP_FUZZ_EXAMPLES", "60"))

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


def _schema(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    # Authentication is ours to supply (a real token, a real session): schemathesis must not
    # generate or negate the security schemes' header and cookie itself.
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
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
    """Steer a generated body towards what the app accepts, so success paths get fuzzed too.

    A schema cannot say "a station that exists" or "a dialable phone"; without this nearly every
    generated warning is (rightly) refused with 422 and the 201 answer is never checked.
    """
    body = case.body
    if not isinstance(body, dict):
        return
    if "person_phone" in body or "source_ref" in body:
        body["person_phone"] = data.draw(
            st.sampled_from(["13800138000", "+86 139-0000-1111", "0791-8888888", "+4930123456"])
        )
    amount = body.get("amount_at_risk")
    if isinstance(amount, int | float) and not isinstance(amount, bool) and 0 <= amount < 1e11:
        body["amount_at_risk"] = round(amount, 2)
    if "source_ref" in body:
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
        if mode == GenerationMode.POSITIVE and data.draw(st.booleans()):
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
    print("\nfuzz statuses:", STATUSES)
    assert all(CASE_COUNTS.values())


def test_fuzz_report(capsys):
    """Prints the case counts gathered above (run with -s to see them)."""
    with capsys.disabled():
        total = sum(CASE_COUNTS.values())
        print(f"\nfuzzed {total} cases over {len(CASE_COUNTS)} operation/mode pairs")
        for label, n in sorted(CASE_COUNTS.items()):
            print(f"  {n:5d}  {label}")
        for label in NOTHING_TO_NEGATE:
            print(f"      -  {label} (no parameter or body to make invalid)")


__all__ = ["factories"]
