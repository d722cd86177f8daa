"""Time to acceptance of high-risk warnings offered to 1 officer at a time against 2 at once.

    python bench/bench_parallel.py [TRIALS] [SEED]      # SQLite in a temporary file

Simulated officers answer each offer as patrol officers do: accept after a while, decline,
or never answer (phone in a pocket, no signal). Each trial draws one warning position and
one behaviour per officer, and plays it twice, with N=1 and N=2 (same seed, same run), through
the real domain functions (dispatch, accept, decline, expire) on a simulated clock: no
sleeping, the times are the clock's. N=1 is the floor; the ratio is N=2's median over it.
Also printed: how many officers were asked per warning (the price of asking several).
"""

import heapq
import math
import random
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402  (bench/common.py)
import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from fieldapp import dispatch, refusals  # noqa: E402
from fieldapp.extensions import db  # noqa: E402
from fieldapp.models import Offer, Station, User, Warning  # noqa: E402

OFFICERS = 10
ACK_TIMEOUT_S = 90  # the 60-90 s
CENTRE = (27.8170, 114.9230)
# Per offer: (share, median seconds, spread) of what an officer does with it.
ACCEPT = (0.45, 25.0, 0.6)  # lognormal delay: about 10-65 s
DECLINE = (0.20, 15.0, 0.5)  # busy with another case, says so
# The rest (35 %) never answer: the offer times out.
HORIZON_S = 3600  # give up (counts as never accepted) after an hour of simulated time


@dataclass(frozen=True)
class Answer:
    kind: str  # accept | decline | ignore
    delay_s: float


def behaviour(rnd: random.Random, officer_ids: list[int]) -> dict[int, Answer]:
    out = {}
    for uid in officer_ids:
        roll, jitter = rnd.random(), rnd.gauss(0, 1)
        if roll < ACCEPT[0]:
            out[uid] = Answer("accept", ACCEPT[1] * math.exp(ACCEPT[2] * jitter))
        elif roll < ACCEPT[0] + DECLINE[0]:
            out[uid] = Answer("decline", DECLINE[1] * math.exp(DECLINE[2] * jitter))
        else:
            out[uid] = Answer("ignore", math.inf)
    return out


def play(station: Station, warning: Warning, answers: dict[int, Answer], start: datetime):
    """(seconds to acceptance or None, officers asked) for one warning, on a simulated clock."""
    queue: list[tuple[datetime, int, str, int]] = []  # (when, seq, what, offer id)
    seen: set[int] = set()
    seq = 0

    def schedule_new() -> None:
        nonlocal seq
        for offer in db.session.scalars(
            sa.select(Offer).where(Offer.warning_id == warning.id, Offer.status == "pending")
        ):
            if offer.id in seen:
                continue
            seen.add(offer.id)
            answer = answers[offer.officer_id]
            if answer.kind != "ignore":
                when = offer.created_at + timedelta(seconds=answer.delay_s)
                heapq.heappush(queue, (when, seq, answer.kind, offer.id))
                seq += 1
            heapq.heappush(queue, (offer.expires_at, seq, "expire", offer.id))
            seq += 1

    dispatch.dispatch(warning, start)
    schedule_new()
    while queue and warning.status == "offered":
        when, _seq, what, offer_id = heapq.heappop(queue)
        if (when - start).total_seconds() > HORIZON_S:
            break
        offer = db.session.get(Offer, offer_id)
        officer = db.session.get(User, offer.officer_id)
        try:
            with db.session.begin_nested():
                if what == "accept":
                    dispatch.accept(warning, officer, when)
                elif what == "decline":
                    dispatch.decline(warning, officer, when)
                else:
                    dispatch.expire(offer, when)
        except refusals.Refusal:
            pass  # answered too late, or taken by a colleague: nothing happened
        schedule_new()
    asked = len(seen)
    if warning.status == "accepted":
        return (warning.accepted_at - start).total_seconds(), asked
    return None, asked


def median_with_misses(values: list[float | None]) -> float:
    """Median where a warning nobody accepted counts as slower than every accepted one."""
    return statistics.median([math.inf if v is None else v for v in values])


def run(url: str, trials: int, seed: int) -> dict:
    app = common.make_app(url, tempfile.mkdtemp(prefix="bench-parallel-"))
    rnd = random.Random(seed)
    start = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    results = {1: [], 2: []}
    asked = {1: [], 2: []}
    with app.app_context():
        upgrade()
        station = Station(
            code="B", name="Bench", lat=CENTRE[0], lon=CENTRE[1], ack_timeout_s=ACK_TIMEOUT_S
        )
        db.session.add(station)
        db.session.flush()
        officers = []
        for i in range(OFFICERS):
            officer = User(
                username=f"o{i}",
                password_hash="x",
                display_name=f"o{i}",
                role="officer",
                station_id=station.id,
                duty_status="on_duty",
                # A rural town's patrol area: about 10 km across.
                lat=CENTRE[0] + rnd.uniform(-0.05, 0.05),
                lon=CENTRE[1] + rnd.uniform(-0.05, 0.05),
                accuracy_m=20.0,
                position_at=start,
            )
            db.session.add(officer)
            officers.append(officer)
        db.session.commit()
        ids = [o.id for o in officers]
        for trial in range(trials):
            at = start + timedelta(minutes=trial)
            # Positions stay fresh on the simulated clock, as an on-duty phone keeps them.
            db.session.execute(sa.update(User).values(position_at=at))
            db.session.commit()
            lat = CENTRE[0] + rnd.uniform(-0.05, 0.05)
            lon = CENTRE[1] + rnd.uniform(-0.05, 0.05)
            answers = behaviour(rnd, ids)
            for n in (1, 2):
                station = db.session.get(Station, station.id)
                station.parallel_offers_high = n
                warning = Warning(
                    source_ref=f"t{trial}-n{n}",
                    person_name="-",
                    person_phone="13800138000",
                    fraud_type="fake_loan",
                    risk_level="high",
                    lat=lat,
                    lon=lon,
                    station_id=station.id,
                    status="received",
                    received_at=at,
                    last_action_at=at,
                )
                db.session.add(warning)
                db.session.flush()
                seconds, count = play(station, warning, answers, at)
                results[n].append(seconds)
                asked[n].append(count)
                db.session.rollback()  # every trial starts from the same database
    return {"results": results, "asked": asked, "trials": trials, "seed": seed}


def report(out: dict) -> None:
    print(
        f"time to acceptance, {out['trials']} high-risk warnings, seed {out['seed']}, "
        f"{OFFICERS} officers on duty, offer timeout {ACK_TIMEOUT_S} s"
    )
    print(
        f"officers: accept {ACCEPT[0]:.0%} (median {ACCEPT[1]:.0f} s), "
        f"decline {DECLINE[0]:.0%} (median {DECLINE[1]:.0f} s), "
        f"never answer {1 - ACCEPT[0] - DECLINE[0]:.0%}"
    )
    medians = {}
    for n in (1, 2):
        values = out["results"][n]
        got = sorted(v for v in values if v is not None)
        medians[n] = median_with_misses(values)
        p90 = common.pct([math.inf if v is None else v for v in values], 90)
        print(
            f"  N={n}: median {medians[n]:6.1f} s   p90 {p90:6.1f} s   "
            f"accepted {len(got)}/{len(values)}   "
            f"officers asked per warning {statistics.mean(out['asked'][n]):.2f}"
        )
    print(f"ratio median N=2 / N=1: {medians[2] / medians[1]:.2f}")


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    folder = tempfile.mkdtemp(prefix="bench-parallel-db-")
    report(run(f"sqlite:///{folder}/bench.db", trials, seed))


if __name__ == "__main__":
    main()
