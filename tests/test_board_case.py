"""The whole case on the chief's warning page, the reassign picker's facts, badge numbers."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from fieldapp import demo, dispatch
from fieldapp.board import picker
from fieldapp.extensions import db
from fieldapp.models import Confirmation, ContactAttempt, Offer, Outcome, User


@pytest.fixture
def case(make, fake_clock):
    """A warning of station A worked by 杨强 031207, confirmed by 杨强 046610, persuaded."""
    now = fake_clock.now()
    a = make.station("A", name="东岭派出所")
    b = make.station("B", name="西山派出所", lat=28.2, lon=115.3)
    chief = make.user(a, "chief", "chief_a")
    make.user(b, "chief", "chief_b")
    make.user(a, "admin", "root")
    yq1 = make.user(a, "officer", "yq1", display_name="杨强", badge_no="031207")
    yq2 = make.user(a, "auxiliary", "yq2", display_name="杨强", badge_no="046610")
    w = make.warning(
        a,
        received_at=now - timedelta(minutes=30),
        person_name="郭明",
        person_phone="13163720175",
        address="白沙村18号",
        note="网恋对象推荐投资平台，受害人准备追加投入。",
        suspect_account="6217 **** **** 2897",
        amount_at_risk=Decimal("3785600.00"),
        owner_id=yq1.id,
        status="resolved",
        resolved_at=now,
    )
    tries = [
        ("phone", False, "关机。", 5),
        ("wechat_video", True, "同村辅警微信视频接通，本人正在输入对方卡号，已劝阻。", 9),
    ]
    for n, (channel, reached, note, minutes) in enumerate(tries):
        attempt = ContactAttempt(
            client_id=f"case-{n}",
            warning_id=w.id,
            user_id=yq1.id,
            channel=channel,
            reached=reached,
            note=note,
            attempted_at=w.received_at + timedelta(minutes=minutes),
        )
        db.session.add(attempt)
        db.session.flush()
    db.session.add(
        Confirmation(client_id="case-c", attempt_id=attempt.id, user_id=yq2.id, note="我在现场")
    )
    db.session.add(
        Outcome(
            warning_id=w.id,
            outcome="persuaded",
            app_installed=True,
            note="已劝阻，协助安装国家反诈中心APP。",
            recorded_by_id=yq1.id,
            recorded_at=now,
        )
    )
    db.session.commit()
    return {"a": a, "b": b, "w": w, "chief": chief, "yq1": yq1, "yq2": yq2}


def test_chief_reads_everything_officers_and_the_centre_wrote(case, client, auth):
    auth.login("chief_a")
    resp = client.get(f"/board/warnings/{case['w'].id}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    for text in (
        "白沙村18号",
        "网恋对象推荐投资平台，受害人准备追加投入。",
        "6217 **** **** 2897",
        "3,785,600 元",
        "关机。",
        "同村辅警微信视频接通，本人正在输入对方卡号，已劝阻。",
        "已劝阻，协助安装国家反诈中心APP。",
        "我在现场",
        "13163720175",
    ):
        assert text in html, text
    attempts = html.split('id="attempts"')[1].split("</ol>")[0]
    assert attempts.count("未联系上") == 1 and attempts.count("已联系上") == 1
    assert attempts.count("记录人：杨强（警号 031207）") == 2
    assert "杨强（警号 046610）" in attempts  # who confirmed, told apart from the author
    assert "2026年11月25日 09:35:00" in attempts  # each attempt's time, Shanghai


def test_no_ascii_colon_inside_chinese_sentences_on_the_chiefs_pages(case, client, auth):
    """As on the officer's pages (issue 10.8): the timeline's "who: what" is 杨强：已接警."""
    auth.login("chief_a")
    w = case["w"]
    for path in (
        f"/board/warnings/{w.id}",
        f"/board/warnings/{w.id}/reassign",
        "/board/",
        "/board/figures?period=last30",
        "/board/wall",
        "/people/",
        "/intake/new",
    ):
        resp = client.get(path)
        assert resp.status_code == 200, path
        html = resp.get_data(as_text=True)
        text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", html, flags=re.S)
        m = re.search(r"[\u4e00-\u9fff）]\s*:|:\s*[\u4e00-\u9fff（]", text)
        assert not m, (path, text[m.start() - 60 : m.end() + 30] if m else "")
        assert "&lt;" not in html.split("<main", 1)[1], path  # the markup is not escaped twice
    html = client.get(f"/board/warnings/{case['w'].id}").get_data(as_text=True)
    assert '：<span class="note">我在现场</span>' in html


def test_another_stations_chief_gets_not_found(case, client, auth):
    auth.login("chief_b")
    assert client.get(f"/board/warnings/{case['w'].id}").status_code == 404
    assert client.get(f"/board/warnings/{case['w'].id}/reassign").status_code == 404
    auth.logout()
    auth.login("root")
    assert client.get(f"/board/warnings/{case['w'].id}").status_code == 200


def test_an_offers_distance_is_part_of_its_sentence(case, client, auth):
    """派单给…（第 1 次派单），距离 150 米。 — not a bracket left after the full stop."""
    from fieldapp import events

    for reason, rank in ((None, 1), ("reassign", None), ("help", None)):
        extra = {"reason": reason} if reason else {"rank": rank}
        events.record(
            "offered", warning=case["w"], officer_id=case["yq2"].id, distance_m=148, **extra
        )
    db.session.commit()
    auth.login("chief_a")
    html = client.get(f"/board/warnings/{case['w'].id}").get_data(as_text=True)
    timeline = html.split('class="timeline"')[1]
    for sentence in (
        "派单给杨强（警号 046610）（第 1 次派单），距离 150 米。",
        "改派给杨强（警号 046610），距离 150 米。",
        "请杨强（警号 046610）协助，距离 150 米。",
    ):
        assert sentence in timeline, sentence
    assert "。（" not in timeline


def test_timeline_names_carry_badge_numbers(case, client, auth, fake_clock):
    from fieldapp import events

    events.record(
        "reassigned",
        warning=case["w"],
        actor=case["chief"],
        from_user_id=case["yq1"].id,
        to_user_id=case["yq2"].id,
    )
    db.session.commit()
    auth.login("chief_a")
    html = client.get(f"/board/warnings/{case['w'].id}").get_data(as_text=True)
    timeline = html.split('class="timeline"')[1]
    assert "由杨强（警号 031207）改派给杨强（警号 046610）。" in timeline


@pytest.fixture
def shift(make, fake_clock):
    """Station A: an open warning 1 km north of the station and five people around it."""
    a = make.station("A", position_stale_s=900)
    chief = make.user(a, "chief", "chief_a")
    lat, lon = a.lat + 0.009, a.lon  # the resident
    people = {
        "near_stale": make.user(
            a,
            "officer",
            "ns",
            display_name="近但过时",
            badge_no="1",
            on_duty=True,
            lat=lat + 0.001,
            lon=lon,
            position_age_s=3600,
        ),
        "far": make.user(
            a,
            "officer",
            "far",
            display_name="远",
            badge_no="2",
            on_duty=True,
            lat=lat + 0.05,
            lon=lon,
            position_age_s=60,
        ),
        "near": make.user(
            a,
            "auxiliary",
            "near",
            display_name="近",
            badge_no="3",
            on_duty=True,
            lat=lat + 0.002,
            lon=lon,
            position_age_s=30,
        ),
        "nowhere": make.user(a, "officer", "nw", display_name="无位置", badge_no="4", on_duty=True),
        "home": make.user(
            a,
            "officer",
            "home",
            display_name="休息",
            badge_no="5",
            lat=lat,
            lon=lon,
            position_age_s=10,
        ),
    }
    w = make.warning(a, lat=lat, lon=lon, status="accepted", owner_id=people["far"].id)
    other = make.warning(a, status="accepted", owner_id=people["near"].id)
    db.session.commit()
    return {"a": a, "w": w, "other": other, "chief": chief, **people}


def test_picker_orders_by_duty_freshness_then_distance(shift, fake_clock):
    choices = picker.choices(shift["w"], fake_clock.now())
    order = [c.user.username for c in choices]
    assert order == ["near", "far", "ns", "nw", "home"]
    by_name = {c.user.username: c for c in choices}
    assert round(by_name["near"].distance_m) == 222  # 0.002° of latitude
    assert by_name["near"].open_warnings == 1 and by_name["near"].fresh
    assert by_name["far"].current and by_name["far"].open_warnings == 1
    assert not by_name["ns"].fresh and by_name["ns"].position_age_s == 3600
    assert by_name["nw"].distance_m is None and by_name["nw"].position_age_s is None
    assert not by_name["home"].on_duty


def test_picker_page_shows_the_facts(shift, client, auth):
    auth.login("chief_a")
    resp = client.get(f"/board/warnings/{shift['w'].id}/reassign", headers={"HX-Request": "1"})
    html = resp.get_data(as_text=True)
    assert "<html" not in html and "HX-Request" in resp.headers["Vary"]
    cards = re.findall(r'<label class="choice-card.*?</label>', html, re.S)
    assert len(cards) == 5
    first = cards[0]
    assert "近（警号 3）" in first and "辅警" in first and "值班" in first
    assert "距当事人 220 米" in first
    assert "在办预警：1 起" in first and "位置更新于 30 秒前" in first
    far = next(c for c in cards if "远（警号 2）" in c)
    assert "disabled" in far and "当前承办" in far and "距当事人 5.6 公里" in far
    assert "无位置" in next(c for c in cards if "无位置（警号 4）" in c)
    assert "未值班" in cards[-1]
    full = client.get(f"/board/warnings/{shift['w'].id}/reassign?next=//evil.example/")
    page = full.get_data(as_text=True)
    assert "<html" in page and 'value="//evil.example/"' not in page


def test_reassign_through_the_picker_then_board_shows_the_holder(shift, client, auth):
    auth.login("chief_a")
    token = auth.csrf("/board/")
    resp = client.post(
        f"/board/warnings/{shift['w'].id}/reassign",
        data={"to_user_id": shift["near"].id, "csrf_token": token, "next": "/board/"},
        follow_redirects=True,
    )
    assert "已改派给近（警号 3）。" in resp.get_data(as_text=True)
    offer = db.session.scalar(sa.select(Offer).where(Offer.warning_id == shift["w"].id))
    assert offer.officer_id == shift["near"].id and offer.status == "pending"
    html = client.get("/board/").get_data(as_text=True)
    row = html.split(f'<tr id="w{shift["w"].id}"')[1].split("</tr>")[0]
    assert "已推送给 近（警号 3）" in row


def test_closed_warning_offers_no_choice(make, fake_clock, client, auth):
    a = make.station("A")
    make.user(a, "chief", "chief_a")
    make.user(a, "officer", "o1")
    w = make.warning(a, status="resolved")
    db.session.commit()
    auth.login("chief_a")
    html = client.get(f"/board/warnings/{w.id}/reassign").get_data(as_text=True)
    assert "choice-card" not in html and "disabled" in html


def test_badge_numbers_are_unique_per_station(make):
    a, b = make.station("A"), make.station("B")
    make.user(a, "officer", badge_no="012345")
    make.user(b, "officer", badge_no="012345")  # another station may reuse it
    make.user(a, "officer")  # existing rows have none, and many may have none
    make.user(a, "officer")
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        make.user(a, "officer", badge_no="012345")
    db.session.rollback()


def test_demo_people_all_have_badges_and_namesakes_differ(app, fake_clock):
    demo.build(seed=7)
    db.session.flush()
    users = list(db.session.scalars(sa.select(User)))
    assert users and all(u.badge_no and re.fullmatch(r"\d{6}", u.badge_no) for u in users)
    per_station = {(u.station_id, u.badge_no) for u in users}
    assert len(per_station) == len(users)
    names = [u.display_name for u in users]
    assert names.count("杨强") == 2  # the demo's namesakes, now told apart
    labels = {(u.display_name, u.badge_no) for u in users}
    assert len(labels) == len(users)
    db.session.rollback()


def test_offer_holder_on_the_warning_page(shift, client, auth, fake_clock):
    dispatch.reassign(shift["w"], shift["near"], shift["chief"], fake_clock.now())
    db.session.commit()
    auth.login("chief_a")
    html = client.get(f"/board/warnings/{shift['w'].id}").get_data(as_text=True)
    assert re.search(r"已推送给 近（警号 3），剩余 [01]:\d\d", html)  # as the officer counts it


def test_create_user_with_a_badge_number(runner, make):
    make.station("CG")
    db.session.commit()

    def create(username, badge):
        args = ["create-user", "--username", username, "--role", "officer", "--station", "CG"]
        return runner.invoke(args=[*args, "--badge-no", badge], input="a-long-password-9\n")

    assert create("yq1", " 031207 ").exit_code == 0
    again = create("yq2", "031207")
    assert again.exit_code != 0 and "already used at CG" in again.output
    assert create("yq3", "０３１２").exit_code != 0  # full-width digits are not a badge number
    assert create("yq4", "1" * 17).exit_code != 0
    badges = db.session.execute(sa.select(User.username, User.badge_no)).all()
    assert badges == [("yq1", "031207")]


def test_personal_pages_are_never_stored(case, client, auth):
    auth.login("chief_a")
    for path in (
        "/board/",
        "/board/wall",
        "/board/figures",
        "/intake/new",
        "/intake/import",
        f"/board/warnings/{case['w'].id}/reassign",
    ):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    token = auth.csrf("/intake/new")
    refused = client.post("/intake/new", data={"person_name": "郭明", "csrf_token": token})
    assert refused.status_code == 422 and refused.headers["Cache-Control"] == "no-store"
