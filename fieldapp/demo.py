"""A demo county: three stations, about fifty people, two months of warnings, a few open now."""

import random
from datetime import timedelta

from fieldapp import clock, demo_warnings, dispatch
from fieldapp.auth.passwords import hash_password
from fieldapp.extensions import db
from fieldapp.models import Station, TalkingPoints, User

DEMO_PASSWORD = "fanzha-2026!"  # noqa: S105 - demo data only, printed at start

STATIONS = [
    # code, name, lat, lon, contact target (town 5 min, countryside 10)
    ("CG", "城关派出所", 27.8170, 114.9230, 300),
    ("QS", "青山派出所", 27.9020, 114.7810, 600),
    ("HK", "河口派出所", 27.7350, 115.0610, 600),
]
TALKING_POINTS = {
    "online_shopping_refund": (
        "正规商家退款原路退回，不会让您先转账、开“备用金”或“注销校园贷”。挂断电话，打开购物平台官方客服核实。",
        "Real shops refund to the original payment; they never ask you to transfer first or to "
        "'fix your credit record'. Hang up and check with the platform's official service.",
    ),
    "fake_loan": (
        "凡是放款前要交“保证金”“解冻费”“刷流水”的都是诈骗。正规贷款不会先收费。",
        "Any loan that wants a 'deposit', an 'unfreezing fee' or 'turnover' before paying out "
        "is a scam. Real lenders never charge first.",
    ),
    "impersonating_boss": (
        "“领导”加您微信让转账，一定要当面或打原来存的电话核实，不要用对方给的号码。",
        "A 'boss' adding you on WeChat and asking for a transfer: verify in person or on the "
        "number you already had, never the one they give.",
    ),
    "impersonating_police": (
        "公检法不会电话办案，没有“安全账户”，不会让您转账或下载会议软件。",
        "Police, prosecutors and courts never handle cases by phone, have no 'safe account', "
        "and never ask you to transfer money or install meeting apps.",
    ),
    "order_brushing": (
        "刷单返利都是诈骗，先给小甜头，再让您越投越多，最后拉黑。",
        "Paid order-brushing is always a scam: a small reward first, then ever larger "
        "'tasks', then they vanish.",
    ),
    "romance_investment": (
        "网上认识、从未见面的“恋人”带您投资赚钱，是“杀猪盘”。平台是假的，钱取不出来。",
        "An online 'partner' you have never met who shows you an investment platform is a "
        "pig-butchering scam: the platform is fake and nothing can be withdrawn.",
    ),
    "other": (
        "未知链接不点击，陌生来电不轻信，个人信息不透露，转账汇款多核实。",
        "Don't click unknown links, don't trust strange callers, don't give out personal "
        "information, verify every transfer.",
    ),
}


def _badge_numbers(rng: random.Random):
    """Six-digit badge numbers (警号), never repeated: two 杨强 still differ by theirs."""
    seen: set[str] = set()
    while True:
        badge = f"{rng.randint(10000, 99999):06d}"
        if badge not in seen:
            seen.add(badge)
            yield badge


def build(seed: int = 7) -> list[tuple[str, str, str]]:
    """Create the demo county in the session; returns (username, role, station) logins."""
    rng = random.Random(seed)
    # Badge numbers from a generator of their own, so the names and warnings stay as they were.
    badges = _badge_numbers(random.Random(seed + 1))
    now = clock.now()
    password_hash = hash_password(DEMO_PASSWORD)
    logins: list[tuple[str, str, str]] = []

    for fraud_type, (zh, en) in TALKING_POINTS.items():
        db.session.add(TalkingPoints(fraud_type=fraud_type, text_zh=zh, text_en=en))

    stations: list[Station] = []
    officers: dict[int, list[User]] = {}
    for code, name, lat, lon, target in STATIONS:
        station = Station(
            code=code,
            name=name,
            lat=lat,
            lon=lon,
            contact_target_s=target,
            auxiliaries_take_offers=code != "CG",
            require_visit_for_high_risk=code == "QS",
        )
        db.session.add(station)
        db.session.flush()
        stations.append(station)
        chief = User(
            username=f"chief_{code.lower()}",
            password_hash=password_hash,
            display_name=f"{demo_warnings.name(rng)}所长",
            badge_no=next(badges),
            role="chief",
            station_id=station.id,
        )
        db.session.add(chief)
        logins.append((chief.username, "chief", code))
        officers[station.id] = []
        for i in range(1, 17):
            role = "officer" if i <= 10 else "auxiliary"
            user = User(
                username=f"{code.lower()}{'mj' if role == 'officer' else 'fj'}{i:02d}",
                password_hash=password_hash,
                display_name=demo_warnings.name(rng),
                badge_no=next(badges),
                role=role,
                station_id=station.id,
                phone=demo_warnings.phone(rng),
            )
            if i <= 12 or i in (
                14,
                15,
            ):  # most of the shift is on duty, somewhere in the station's area
                user.duty_status = "on_duty"
                user.duty_changed_at = now - timedelta(hours=2)
                user.lat = lat + rng.uniform(-0.05, 0.05)
                user.lon = lon + rng.uniform(-0.05, 0.05)
                user.accuracy_m = rng.choice([10.0, 25.0, 60.0])
                user.position_at = now - timedelta(minutes=rng.randint(0, 8))
            db.session.add(user)
            officers[station.id].append(user)
        logins.append((f"{code.lower()}mj01", "officer", code))
        logins.append((f"{code.lower()}fj11", "auxiliary", code))
    admin = User(
        username="admin",
        password_hash=password_hash,
        display_name="县局反诈中心",
        badge_no=next(badges),
        role="admin",
        station_id=stations[0].id,
    )
    db.session.add(admin)
    logins.append(("admin", "admin", "CG"))
    db.session.flush()

    demo_warnings.history(rng, stations, officers, now)
    _open_now(rng, stations, now)
    return logins


def _open_now(rng, stations, now) -> None:
    """A few warnings arriving right now, dispatched for real to the nearest officers."""
    for n in range(6):
        station = stations[n % len(stations)]
        warning = demo_warnings.stored(
            demo_warnings.new_warning(rng, station, now - timedelta(minutes=6 - n), f"DEMO-NOW-{n}")
        )
        dispatch.dispatch(warning, now)


def describe(logins: list[tuple[str, str, str]], url: str = "http://127.0.0.1:5000/") -> str:
    """The logins, as printed after the demo is loaded."""
    lines = [f"Demo county loaded. Log in at {url} with:"]
    for username, role, station in logins:
        lines.append(f"  {username:<10} {role:<10} station {station}")
    lines.append(f"Password for every demo user: {DEMO_PASSWORD}")
    return "\n".join(lines)
