"""Every pair of state changes on one warning, raced from two PostgreSQL connections.

Each run has a fresh scene (its own station, people and warning). Two threads, each with a
connection of its own, start the two changes together behind a barrier, each calling the
domain function its caller calls (sync for an officer's entries, a board view for a chief,
the worker for a timeout) and committing or rolling back as that caller does. Afterwards what
must hold whatever the order is checked: never offered with an outcome, one owner, closed
stays closed, no change done twice, no exception other than a refusal (which sync turns into
an entry's result, tests/test_entry_rules.py). Lanes of thread pairs run side by side on
different scenes so the runs stay short.

FIELDAPP_RACE_RUNS sets the runs per pair (100 by default).
"""

import itertools
import os
import threading
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fieldapp import clock, dispatch, duty, fieldwork, helping, refusals
from fieldapp.extensions import db
from fieldapp.models import (
    ContactAttempt,
    Event,
    HelpRequest,
    Offer,
    Outcome,
    Participant,
    Station,
    User,
    Warning,
)
from tests import factories

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not os.environ.get("FIELDAPP_TEST_DATABASE_URL"), reason="needs PostgreSQL"),
]

OPS = (
    "accept",
    "decline",
    "expire",
    "reassign",
    "resolve",
    "join",
    "attempt",
    "confirm",
    "help",
    "ask",
    "duty_off",
)
# These need an offer pending: their scene is a warning a chief reassigned to an officer who
# has not answered yet. The others race on a warning its owner is working.
OFFER_OPS = {"accept", "decline", "expire", "duty_off"}
PAIRS = list(itertools.combinations_with_replacement(OPS, 2))
RUNS = int(os.environ.get("FIELDAPP_RACE_RUNS", "100"))
LANES = 4
# The event each change leaves; the same change twice must leave it once.
ONCE = {
    "accept": "accepted",
    "decline": "declined",
    "expire": "offer_expired",
    "reassign": "reassigned",
    "resolve": "resolved",
    "join": "joined",
    "attempt": "attempt",
    "confirm": "confirmed",
    "help": "help_requested",
    "ask": "join_requested",
    "duty_off": "duty_changed",
}
CAST = ("owner", "offered", "participant", "helper", "target", "next", "chief")


@dataclass(frozen=True)
class Scene:
    offered_state: bool
    warning_id: int
    people: dict  # role in CAST -> user id
    offer_id: int | None  # the pending offer (offered scenes)
    attempt_id: int  # the owner's reached contact, for confirm


def _insert(model, rows: list[dict]) -> list[int]:
    """Many rows in one multi-row INSERT; their ids in order."""
    return list(
        db.session.scalars(sa.insert(model).returning(model.id, sort_by_parameter_order=True), rows)
    )


def _scenes(offered_state: bool, n: int) -> list[Scene]:
    """`n` scenes. Offered: owner O worked it (a reached contact, P joined) and a chief then
    reassigned it to A, whose offer is pending; the chief asked H to join. Working: O owns it
    and is in contact, P joined, O asked the station for help."""
    now = clock.now()
    received = now - timedelta(minutes=10)
    asked_at = received + timedelta(minutes=3)
    tag = uuid.uuid4().hex[:8]
    station_ids = _insert(
        Station,
        [
            {"code": f"R{tag}{i}", "name": "race", "lat": 27.8, "lon": 114.9 + i * 1e-4}
            for i in range(n)
        ],
    )
    user_rows = [
        {
            "username": f"r{tag}-{i}-{role}",
            "password_hash": factories._password_hash(),
            "display_name": role,
            "role": "chief" if role == "chief" else "officer",
            "station_id": sid,
            "duty_status": "on_duty",
            "lat": 27.8 + 0.001 * k,
            "lon": 114.9 + i * 1e-4,
            "accuracy_m": 20.0,
            "position_at": now,
        }
        for i, sid in enumerate(station_ids)
        for k, role in enumerate(CAST)
    ]
    user_ids = _insert(User, user_rows)
    people = [dict(zip(CAST, user_ids[i * 7 : i * 7 + 7], strict=True)) for i in range(n)]
    warning_ids = _insert(
        Warning,
        [
            {
                "source_ref": f"race-{tag}-{i}",
                "person_name": "张三",
                "person_phone": "13800138000",
                "fraud_type": "fake_loan",
                "risk_level": "high",
                "lat": 27.8,
                "lon": 114.9,
                "station_id": sid,
                "status": "offered" if offered_state else "in_contact",
                "owner_id": None if offered_state else cast["owner"],
                "received_at": received,
                "accepted_at": received + timedelta(minutes=1),
                "first_contact_at": received + timedelta(minutes=2),
                "last_action_at": received + timedelta(minutes=2),
            }
            for i, (sid, cast) in enumerate(zip(station_ids, people, strict=True))
        ],
    )
    pairs = list(zip(warning_ids, people, strict=True))
    _insert(
        Offer,
        [
            {
                "warning_id": w,
                "officer_id": cast["owner"],
                "status": "cancelled" if offered_state else "accepted",
                "created_at": received,
                "accepted_at": received + timedelta(minutes=1),
            }
            for w, cast in pairs
        ],
    )
    attempt_ids = _insert(
        ContactAttempt,
        [
            {
                "client_id": uuid.uuid4().hex,
                "warning_id": w,
                "user_id": cast["owner"],
                "channel": "phone",
                "reached": True,
                "attempted_at": received + timedelta(minutes=2),
                "created_at": received + timedelta(minutes=2),
            }
            for w, cast in pairs
        ],
    )
    _insert(Participant, [{"warning_id": w, "user_id": cast["participant"]} for w, cast in pairs])
    if offered_state:
        offer_ids = _insert(
            Offer,
            [
                {
                    "warning_id": w,
                    "officer_id": cast["offered"],
                    "rank": 2,
                    "reason": "reassign",
                    "status": "pending",
                    "created_at": now,
                    "expires_at": now + timedelta(seconds=90),
                }
                for w, cast in pairs
            ],
        )
        asked = [(w, cast["chief"], cast["helper"]) for w, cast in pairs]
    else:
        offer_ids = [None] * n
        asked = [(w, cast["owner"], None) for w, cast in pairs]
    _insert(
        HelpRequest,
        [
            # Asked a while ago: asking again is allowed.
            {"warning_id": w, "requested_by_id": by, "invited_user_id": to, "created_at": asked_at}
            for w, by, to in asked
        ],
    )
    db.session.commit()
    return [
        Scene(offered_state, w, cast, offer, attempt)
        for (w, cast), offer, attempt in zip(pairs, offer_ids, attempt_ids, strict=True)
    ]


# --- the changes, each committed as its caller commits it ---------------------------------


def _commit(change, scene: Scene) -> str:
    """Make a change and commit it, or roll back on a refusal, as sync and the views do. Any
    other exception escapes: in a view it would be a 500, in sync an entry's `error`."""
    try:
        change(scene)
        db.session.commit()
        return "applied"
    except refusals.Refusal as exc:
        db.session.rollback()
        return f"refused:{exc.code}"
    except refusals.Duplicate:
        db.session.rollback()
        return "duplicate"


def two_person_scenes(n: int, role: str, status: str, **person) -> list[tuple[int, int, int]]:
    """`n` (warning, person A, person B): per scene a station, two people of `role` in it
    (with `person`'s extra columns) and one high-risk warning in `status`; not committed."""
    now = clock.now()
    tag = uuid.uuid4().hex[:8]
    stations = _insert(
        Station,
        [{"code": f"T{tag}{i}", "name": "race", "lat": 27.8, "lon": 114.9} for i in range(n)],
    )
    people = _insert(
        User,
        [
            {
                "username": f"t{tag}-{i}-{k}",
                "password_hash": factories._password_hash(),
                "display_name": f"{role} {k}",
                "role": role,
                "station_id": sid,
                **person,
            }
            for i, sid in enumerate(stations)
            for k in (0, 1)
        ],
    )
    warnings = _insert(
        Warning,
        [
            {
                "source_ref": f"race2-{tag}-{i}",
                "person_name": "张三",
                "person_phone": "13800138000",
                "fraud_type": "fake_loan",
                "risk_level": "high",
                "station_id": sid,
                "status": status,
                "received_at": now,
                "last_action_at": now,
            }
            for i, sid in enumerate(stations)
        ],
    )
    return [(w, people[2 * i], people[2 * i + 1]) for i, w in enumerate(warnings)]


def race_two_sides(app, scenes: list, change) -> dict:
    """For each scene, two threads (a connection each) start `change(scene, side)` together
    behind a barrier and commit as its caller does; LANES pairs of threads share the scenes.
    Results by (scene[0], side): "applied", "refused:<code>", "duplicate" or "exception:…"."""
    out: dict = {}

    def side_thread(lane, side, barrier) -> None:
        with app.test_request_context():
            for scene in lane:
                try:
                    barrier.wait(timeout=60)
                except threading.BrokenBarrierError:
                    return
                try:
                    out[scene[0], side] = _commit(change(scene, side), scene)
                except Exception as exc:  # escaped its caller: would be a 500
                    db.session.rollback()
                    out[scene[0], side] = f"exception:{type(exc).__name__}: {exc}"[:200]
                finally:
                    db.session.close()

    threads = []
    for k in range(LANES):
        barrier = threading.Barrier(2)
        for side in (0, 1):
            thread = threading.Thread(target=side_thread, args=(scenes[k::LANES], side, barrier))
            threads.append(thread)
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return out


def _warning(scene: Scene) -> Warning:
    return db.session.get(Warning, scene.warning_id)


def _user(scene: Scene, role: str) -> User:
    return db.session.get(User, scene.people[role])


def _worker(scene: Scene) -> str:
    """Who works the warning: its owner, or (reassigned, not yet accepted) a participant."""
    return "participant" if scene.offered_state else "owner"


def _resolver(scene: Scene) -> str:
    """Nobody owns an offered warning: there the chief closes it."""
    return "chief" if scene.offered_state else "owner"


def _confirm(scene: Scene) -> None:
    attempt = db.session.get(ContactAttempt, scene.attempt_id)
    fieldwork.confirm_attempt(attempt, _user(scene, "helper"), client_id=uuid.uuid4().hex)


CHANGES = {
    "accept": lambda s: dispatch.accept(_warning(s), _user(s, "offered")),
    "decline": lambda s: dispatch.decline(_warning(s), _user(s, "offered")),
    # What the worker's offer_timeout handler does.
    "expire": lambda s: dispatch.expire(db.session.get(Offer, s.offer_id)),
    "reassign": lambda s: dispatch.reassign(_warning(s), _user(s, "target"), _user(s, "chief")),
    "resolve": lambda s: fieldwork.resolve(
        _warning(s), _user(s, _resolver(s)), client_id=uuid.uuid4().hex, outcome="not_fraud"
    ),
    "join": lambda s: helping.join(_warning(s), _user(s, "helper")),
    "attempt": lambda s: fieldwork.log_attempt(
        _warning(s),
        _user(s, _worker(s)),
        client_id=uuid.uuid4().hex,
        channel="phone",
        reached=False,
    ),
    "confirm": _confirm,
    "help": lambda s: helping.request_help(_warning(s), _user(s, _worker(s))),
    # The chief asks one named officer to join (a help request of its own).
    "ask": lambda s: helping.ask_to_join(_warning(s), _user(s, "next"), _user(s, "chief")),
    "duty_off": lambda s: duty.set_duty(_user(s, "offered"), "off_duty"),
}


# --- running the races --------------------------------------------------------------------


def _side(app, lane: list, side: int, barrier: threading.Barrier, out: dict) -> None:
    with app.test_request_context():
        for pair, scene in lane:
            try:
                barrier.wait(timeout=60)
            except threading.BrokenBarrierError:
                return
            try:
                out[scene.warning_id, side] = _commit(CHANGES[pair[side]], scene)
            except Exception as exc:  # escaped its caller
                db.session.rollback()
                out[scene.warning_id, side] = f"exception:{type(exc).__name__}: {exc}"[:300]
            finally:
                db.session.close()


def _race(app, runs: list) -> dict:
    """LANES pairs of threads, each pair racing its share of the runs; results by (warning,
    side)."""
    out: dict = {}
    threads = []
    for k in range(LANES):
        barrier = threading.Barrier(2)
        for side in (0, 1):
            args = (app, runs[k::LANES], side, barrier, out)
            threads.append(threading.Thread(target=_side, args=args))
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    return out


# --- what must hold whatever the order ----------------------------------------------------

LATER_THAN_CLOSED = (
    "offered",
    "accepted",
    "reassigned",
    "unassigned",
    "joined",
    "attempt",
    "join_requested",
)


def _state(warning_ids: list[int]) -> dict:
    """Everything the checks read, in a few queries over all scenes."""
    by = defaultdict(lambda: {"offers": [], "events": []})
    for w in db.session.execute(sa.select(Warning).where(Warning.id.in_(warning_ids))).scalars():
        by[w.id]["warning"] = w
    for o in db.session.scalars(sa.select(Offer).where(Offer.warning_id.in_(warning_ids))):
        by[o.warning_id]["offers"].append(o)
    rows = db.session.execute(
        sa.select(Event.warning_id, Event.id, Event.kind, Event.actor_id)
        .where(Event.warning_id.in_(warning_ids))
        .order_by(Event.id)
    )
    for wid, eid, kind, actor in rows:
        by[wid]["events"].append((eid, kind, actor))
    for wid in db.session.scalars(
        sa.select(Outcome.warning_id).where(Outcome.warning_id.in_(warning_ids))
    ):
        by[wid]["outcome"] = True
    return by


def _violations(pair: tuple, scene: Scene, facts: dict, duty_events: Counter) -> list[str]:
    w, offers, kinds = facts["warning"], facts["offers"], facts["events"]
    pending = [o for o in offers if o.status == "pending"]
    bad = []
    if (w.status == "resolved") != facts.get("outcome", False):
        bad.append(f"{w.status} with outcome {facts.get('outcome', False)}")
    if w.status in ("accepted", "in_contact"):
        taken = [o for o in offers if o.status == "accepted"]
        latest = max(taken, key=lambda o: (o.accepted_at, o.id), default=None)
        if w.owner_id is None or latest is None or latest.officer_id != w.owner_id:
            bad.append(f"{w.status}: owner {w.owner_id} is not who accepted last")
    if w.status in ("offered", "unassigned", "received") and w.owner_id is not None:
        bad.append(f"{w.status} with an owner")
    # A high-risk warning moving on goes to its station's parallel_offers_high at once.
    if w.status == "offered" and not 1 <= len(pending) <= dispatch.MAX_PARALLEL:
        bad.append(f"offered with {len(pending)} pending offers")
    if w.status != "offered" and pending:
        bad.append(f"{w.status} with {len(pending)} pending offers")
    closed = [i for i, k, _a in kinds if k == "resolved"]
    if closed and any(i > closed[0] and k in LATER_THAN_CLOSED for i, k, _a in kinds):
        bad.append("changed after it was closed")
    if w.first_contact_at is not None and w.first_contact_at < w.received_at:
        bad.append("first contact before the warning was received")
    for op in set(pair):
        if op == "duty_off":
            done = duty_events[scene.people["offered"]]
        else:
            done = sum(1 for _i, k, _a in kinds if k == ONCE[op])
        # Done at most once; the same change twice, exactly once (one of the two wins).
        if done > 1 or (pair == (op, op) and done == 0):
            bad.append(f"{op} done {done} times")
    return bad


def test_every_pair_of_state_changes_races_safely(app):
    runs = []
    for offered_state in (True, False):
        pairs = [p for p in PAIRS if bool(OFFER_OPS & set(p)) == offered_state]
        scenes = _scenes(offered_state, len(pairs) * RUNS)
        runs += [(pair, scenes[k * RUNS + r]) for k, pair in enumerate(pairs) for r in range(RUNS)]
    results = _race(app, runs)
    db.session.expire_all()
    facts = _state([scene.warning_id for _pair, scene in runs])
    duty_events = Counter(
        db.session.scalars(sa.select(Event.actor_id).where(Event.kind == "duty_changed"))
    )
    failures: dict[tuple, Counter] = defaultdict(Counter)
    outcomes: dict[tuple, Counter] = defaultdict(Counter)
    failed_runs = 0
    for pair, scene in runs:
        sides = tuple(results.get((scene.warning_id, side), "no result") for side in (0, 1))
        outcomes[pair][sides] += 1
        problems = _violations(pair, scene, facts[scene.warning_id], duty_events)
        problems += [s for s in sides if s.startswith(("exception", "no result"))]
        failed_runs += bool(problems)
        for problem in problems:
            failures[pair][problem[:70]] += 1
    print(f"\nrace runs: {len(runs)} ({len(PAIRS)} pairs x {RUNS}), failed runs: {failed_runs}")
    for pair, counts in sorted(failures.items()):
        print(f"  {'/'.join(pair)}: {dict(counts)}")
    if os.environ.get("FIELDAPP_RACE_VERBOSE"):
        for pair, counts in sorted(outcomes.items()):
            print(f"  {'/'.join(pair)} -> {dict(counts)}")
    assert not failures, {"/".join(p): dict(c) for p, c in failures.items()}
