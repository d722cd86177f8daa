"""The demo's warnings: who the residents are, what everyone wrote, and two months of closed
cases (with the same weeks a year ago), planned in memory and written table by table."""

import random
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from fieldapp import events
from fieldapp.extensions import db
from fieldapp.models import (
    FRAUD_TYPES,
    Confirmation,
    ContactAttempt,
    Offer,
    Outcome,
    Warning,
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "秀英",
    "华",
    "平",
    "刚",
    "桂英",
]
VILLAGES = ["东岭村", "下坪村", "石桥村", "枫树坳", "龙潭村", "新塘村", "上坊村", "白沙村"]
OUTCOME_WEIGHTS = {
    "persuaded": 46,
    "not_fraud": 28,
    "unreachable": 11,
    "refused": 5,
    "already_lost": 10,
}
FRAUD_WEIGHTS = [30, 22, 12, 10, 10, 10, 6]
# What the centre and the officers write. Picked by warning id, not by the random generator,
# so adding them changed none of the names, times or outcomes above.
CENTRE_NOTES = {
    "online_shopping_refund": "对方冒充网购平台客服，以“商品质量问题理赔”为由诱导下载会议软件。",
    "fake_loan": "受害人在网贷APP申请贷款，对方要求先交“保证金”解冻账户。",
    "impersonating_boss": "对方冒充单位领导添加微信，要求向陌生账户转账。",
    "impersonating_police": "对方自称公安机关，称受害人涉嫌洗钱，要求转入“安全账户”。",
    "order_brushing": "受害人参与刷单返利，已小额获利，正被要求加大投入。",
    "romance_investment": "网恋对象推荐投资平台，受害人准备追加投入。",
    "other": "监测到受害人与涉诈号码通话超过十分钟。",
}
UNREACHED_NOTES = ["无人接听。", "关机。", "占线，稍后再拨。", "上门未见本人，已留联系方式给家属。"]
REACHED_NOTES = {
    "phone": "电话接通，本人正准备转账，已当场劝阻。",
    "wechat_video": "同村辅警微信视频接通，本人正在输入对方卡号，已劝阻。",
    "visit": "上门见到本人，核实情况并当面劝阻。",
}
OUTCOME_NOTES = {
    "persuaded": "已劝阻，协助安装国家反诈中心APP并开启来电预警。",
    "not_fraud": "核实为正常交易，对方是本人亲属。",
    "unreachable": "多次联系未果，已请村委会协助寻找。",
    "refused": "本人不听劝阻，已告知风险并记录。",
    "already_lost": "本人已转账，引导其到派出所报案。",
}


def name(rng: random.Random) -> str:
    """A made-up Chinese name."""
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def phone(rng: random.Random) -> str:
    """A made-up mobile number."""
    return "1" + rng.choice("3578") + "".join(rng.choice("0123456789") for _ in range(9))


def new_warning(rng, station, received_at, ref) -> Warning:
    """A warning as the centre would send it, near `station`, not yet added."""
    fraud_type = rng.choices(FRAUD_TYPES, FRAUD_WEIGHTS)[0]
    amount = Decimal(rng.choice([800, 3000, 10000, 20000, 50000, 100000]))
    return Warning(
        source_ref=ref,
        person_name=name(rng),
        person_phone=phone(rng),
        fraud_type=fraud_type,
        risk_level=rng.choices(["high", "medium", "low"], [60, 30, 10])[0],
        amount_at_risk=amount,
        lat=station.lat + rng.uniform(-0.06, 0.06),
        lon=station.lon + rng.uniform(-0.06, 0.06),
        accuracy_m=rng.choice([50.0, 200.0, 1000.0]),
        station_id=station.id,
        address=f"{rng.choice(VILLAGES)}{rng.randint(1, 60)}号",
        note=CENTRE_NOTES[fraud_type],
        suspect_account=f"6217 **** **** {zlib.crc32(ref.encode()) % 10000:04d}",
        status="received",
        received_at=received_at,
        last_action_at=received_at,
    )


def history(rng, stations, officers, now) -> None:
    """About twenty warnings a day for the last 45 days, and the same weeks a year ago."""
    periods = [
        (now - timedelta(days=45), now - timedelta(hours=3), 20),
        (now - timedelta(days=365 + 45), now - timedelta(days=365 - 15), 14),
    ]
    cases: list[_Case] = []
    ref = 0
    for start, end, per_day in periods:
        days = (end - start).days + 1  # the last, partial day too: "today" has figures
        for day in range(days):
            for _ in range(rng.randint(per_day - 4, per_day + 4)):
                ref += 1
                station = rng.choices(stations, [50, 30, 20])[0]
                received = start + timedelta(days=day, seconds=rng.randint(6 * 3600, 23 * 3600))
                if received >= end:
                    continue
                cases.append(
                    _closed_warning(rng, station, officers[station.id], received, f"DEMO-{ref:06d}")
                )
    _write(cases)


def stored(warning: Warning) -> Warning:
    """Add a demo warning with its "received" event, timed when it arrived."""
    db.session.add(warning)
    db.session.flush()
    events.record(
        "received", warning=warning, **_received(warning)
    ).created_at = warning.received_at
    return warning


def _received(warning: Warning) -> dict:
    return {"source": "api", "fraud_type": warning.fraud_type, "risk_level": warning.risk_level}


@dataclass
class _Case:
    """One closed warning of the history, planned in memory and written with all the others:
    a flush per row would cost two months of history tens of thousands of round trips."""

    warning: Warning
    offers: list[Offer] = field(default_factory=list)
    attempts: list[ContactAttempt] = field(default_factory=list)
    confirmations: list[tuple[ContactAttempt, Confirmation]] = field(default_factory=list)
    outcome: Outcome | None = None
    # Its events in order: (kind, when, actor, the offer or attempt it names, other data).
    steps: list[tuple] = field(default_factory=list)


def _write(cases: list[_Case]) -> None:
    """Insert the planned cases table by table, each table in one flush."""
    db.session.add_all(case.warning for case in cases)
    db.session.flush()
    for case in cases:
        for row in (*case.offers, *case.attempts, case.outcome):
            row.warning_id = case.warning.id
        db.session.add_all([*case.offers, *case.attempts, case.outcome])
    db.session.flush()
    for case in cases:
        for attempt, confirmation in case.confirmations:
            confirmation.attempt_id = attempt.id
            db.session.add(confirmation)
        warning = case.warning
        events.record(
            "received", warning=warning, **_received(warning)
        ).created_at = warning.received_at
        for kind, at, actor, named, data in case.steps:
            if isinstance(named, Offer):
                data = {**data, "offer_id": named.id}
            elif isinstance(named, ContactAttempt):
                data = {**data, "attempt_id": named.id}
            events.record(kind, warning=warning, actor=actor, **data).created_at = at
    db.session.flush()


def _closed_warning(rng, station, staff, received, ref) -> _Case:
    index = int(ref.removeprefix("DEMO-"))
    case = _Case(new_warning(rng, station, received, ref))
    warning = case.warning
    pool = [u for u in staff if u.role == "officer" or station.auxiliaries_take_offers]
    t = received
    owner = None
    for rank in range(1, 4):
        officer = rng.choice(pool)
        t += timedelta(seconds=rng.randint(3, 15))
        declined = rank < 3 and rng.random() < 0.12
        offer = Offer(
            officer_id=officer.id,
            rank=rank,
            distance_m=rng.uniform(300, 9000),
            created_at=t,
            sent_at=t,
            delivered_at=t + timedelta(seconds=rng.randint(1, 6)),
            expires_at=t + timedelta(seconds=station.ack_timeout_s),
        )
        case.offers.append(offer)
        offered = {"officer_id": officer.id, "rank": rank, "distance_m": round(offer.distance_m)}
        case.steps.append(("offered", t, None, offer, {**offered, "reason": "dispatch"}))
        t += timedelta(seconds=rng.randint(8, 80))
        if declined:
            offer.status, offer.declined_at = "declined", t
            case.steps.append(("declined", t, officer, offer, {}))
            continue
        offer.status, offer.accepted_at = "accepted", t
        owner, warning.accepted_at = officer, t
        case.steps.append(("accepted", t, officer, offer, {}))
        break
    owner = owner or rng.choice(pool)
    warning.owner_id = owner.id
    outcome = rng.choices(list(OUTCOME_WEIGHTS), list(OUTCOME_WEIGHTS.values()))[0]
    tries = 3 if outcome == "unreachable" else rng.randint(1, 3)
    for n in range(tries):
        t += timedelta(seconds=rng.randint(40, 400))
        reached = outcome != "unreachable" and n == tries - 1
        channel = rng.choices(["phone", "wechat_video", "visit"], [60, 25, 15])[0]
        attempt = ContactAttempt(
            client_id=f"demo-{ref}-{n}",
            user_id=owner.id,
            channel=channel,
            reached=reached,
            attempted_at=t,
            created_at=t,
            note=REACHED_NOTES[channel]
            if reached
            else UNREACHED_NOTES[(index + n) % len(UNREACHED_NOTES)],
        )
        case.attempts.append(attempt)
        if reached and channel != "phone":
            # A colleague who was there (or on the call) vouches for the contact.
            colleague = staff[(index + n) % len(staff)]
            if colleague.id != owner.id:
                confirmation = Confirmation(
                    client_id=f"demo-{ref}-{n}-c",
                    user_id=colleague.id,
                    confirmed_at=t + timedelta(minutes=5),
                )
                case.confirmations.append((attempt, confirmation))
        if warning.first_contact_at is None:
            warning.first_contact_at = t
        fields = {"channel": channel, "reached": reached}
        case.steps.append(("attempt", t, owner, attempt, fields))
    t += timedelta(seconds=rng.randint(60, 900))
    lost = warning.amount_at_risk if outcome == "already_lost" else None
    case.outcome = Outcome(
        outcome=outcome,
        loss_amount=lost,
        app_installed=outcome == "persuaded" and rng.random() < 0.8,
        recorded_by_id=owner.id,
        recorded_at=t,
        note=OUTCOME_NOTES[outcome],
        defrauded_after=outcome in ("refused", "unreachable") and rng.random() < 0.2,
    )
    warning.status, warning.resolved_at, warning.last_action_at = "resolved", t, t
    case.steps.append(("resolved", t, owner, None, {"outcome": outcome}))
    return case
