"""Issue 10, the officer's pages without JavaScript and their words: explicit answers, refusals
at the field with every value kept, receipts, the offer first, and point 8's texts."""

import json
import re
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from fieldapp import clock, dispatch, fieldwork, labels, push
from fieldapp.extensions import db
from fieldapp.models import ContactAttempt, Offer, Outcome, TalkingPoints
from tests import factories
from tests.fieldsetup import cid


def post_entry(client, auth, warning_id: int, **fields):
    token = auth.csrf(f"/field/w/{warning_id}")
    return client.post(
        f"/field/w/{warning_id}/entry", data={"csrf_token": token, "client_id": cid(), **fields}
    )


def slot(html: str, element_id: str) -> str:
    """The text inside the element with `element_id` (a field's message, a receipt slot)."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:p|div)>', html, re.S)
    assert match, element_id
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def main_of(html: str) -> str:
    """The page's own content (every officer page also carries the live alert's Accept)."""
    return html.split('<main id="main">')[1].split("</main>")[0]


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# --- every answer is an explicit choice ---------------------------------------------------


def test_the_forms_preselect_no_answer(field, auth, client):
    auth.login("mj1")
    html = client.get(f"/field/w/{field.warning.id}").get_data(as_text=True)
    radios = re.findall(r'<input type="radio" name="(\w+)"[^>]*>', html)
    assert set(radios) == {"reached", "outcome"}
    assert not re.search(r'<input type="radio"[^>]*checked', html)
    assert 'name="outcome"' in html and "<select" not in html.split('data-kind="resolve"')[1]


def test_no_js_attempt_without_an_answer_is_refused_at_the_field(field, auth, client):
    auth.login("mj1")
    resp = post_entry(
        client, auth, field.warning.id, kind="attempt", channel="phone", note="打了两次"
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "是否联系上" in slot(html, "attempt-reached-error")
    assert 'id="attempt-errors" tabindex="-1" role="alert" autofocus' in html
    assert re.search(r'<textarea id="attempt-note"[^>]*>打了两次</textarea>', html)
    # The form posts back to its own error summary, so the refused form opens in view.
    assert f'action="/field/w/{field.warning.id}/entry#attempt-errors"' in html
    assert count(ContactAttempt) == 0


def test_no_js_refused_outcome_keeps_every_value(field, auth, client):
    auth.login("mj1")
    sent = {"kind": "resolve", "outcome": "already_lost", "app_installed": "1", "note": "已转账"}
    resp = post_entry(client, auth, field.warning.id, **sent)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "损失金额" in slot(html, "resolve-loss_amount-error")
    assert 'value="already_lost" checked' in html
    assert re.search(r'name="app_installed" value="1" checked', html)
    assert ">已转账</textarea>" in html
    assert count(Outcome) == 0


def test_no_js_persuaded_without_a_reached_contact_is_refused_at_the_outcome(field, auth, client):
    fieldwork.log_attempt(
        field.warning, field.officer, client_id=cid(), channel="phone", reached=False
    )
    db.session.commit()
    auth.login("mj1")
    resp = post_entry(client, auth, field.warning.id, kind="resolve", outcome="persuaded")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "联系上" in slot(html, "resolve-outcome-error")
    assert count(Outcome) == 0
    # The page knows, so the phone says it before sending (entries.js reads this).
    assert 'data-has-contact="0"' in html


def test_no_js_saved_attempt_shows_its_receipt_where_the_form_was(field, auth, client):
    auth.login("mj1")
    resp = post_entry(client, auth, field.warning.id, kind="attempt", channel="visit", reached="no")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/field/w/{field.warning.id}#receipt-attempt")
    html = client.get(f"/field/w/{field.warning.id}").get_data(as_text=True)
    receipt = slot(html, "receipt-attempt")
    assert "已保存" in receipt and re.search(r"\d\d:\d\d:\d\d", receipt)
    assert "flash-success" not in html  # not at the top of a long page
    [attempt] = db.session.scalars(sa.select(ContactAttempt)).all()
    assert attempt.reached is False


# --- the offer comes first; Join is not for the officer holding it -------------------------


def offered_to_mj2(field, fake_clock):
    """A new warning offered to the colleague mj2 (the station's timeout: 90 s)."""
    warning = factories.warning(field.station)
    offer = dispatch.make_offer(warning, field.colleague, fake_clock.now(), distance_m=148)
    db.session.commit()
    return warning, offer


def test_offer_comes_before_everything_and_join_is_not_offered(field, auth, client, fake_clock):
    warning, _offer = offered_to_mj2(field, fake_clock)
    auth.login("mj2")
    html = client.get(f"/field/w/{warning.id}").get_data(as_text=True)
    main = html.split('<main id="main">')[1]
    assert main.index('data-kind="accept"') < main.index("tel:")
    assert main.index("data-expires") < main.index("tel:")
    assert 'data-kind="join"' not in main


def test_an_offer_past_its_time_has_no_buttons(field, auth, client, fake_clock):
    warning, offer = offered_to_mj2(field, fake_clock)
    fake_clock.advance(91)
    auth.login("mj2")
    html = main_of(client.get(f"/field/w/{warning.id}").get_data(as_text=True))
    assert db.session.get(Offer, offer.id).status == "pending"  # the worker has not run yet
    assert 'data-kind="accept"' not in html and 'data-kind="decline"' not in html
    assert "时间已到" in html


def test_an_offer_taken_or_declined_says_so(field, auth, client, fake_clock):
    warning, offer = offered_to_mj2(field, fake_clock)
    dispatch.reassign(warning, field.officer, field.chief, fake_clock.now())
    dispatch.accept(warning, field.officer, fake_clock.now())
    db.session.commit()
    auth.login("mj2")
    html = main_of(client.get(f"/field/w/{warning.id}").get_data(as_text=True))
    assert f"{field.officer.display_name} 已接下此预警" in html
    assert 'data-kind="accept"' not in html
    other, offer2 = offered_to_mj2(field, fake_clock)
    dispatch.decline(other, field.colleague, fake_clock.now())
    db.session.commit()
    assert "您已拒绝此预警" in client.get(f"/field/w/{other.id}").get_data(as_text=True)


# --- point 8: the words officers read all day ----------------------------------------------


def test_an_auxiliary_is_not_promised_offers_the_station_never_makes(field, auth, client):
    auth.login("fj1")
    html = client.get("/field/").get_data(as_text=True)
    assert "附近的预警会推送给您" not in html
    assert "本所不向辅警推送预警" in html
    field.station.auxiliaries_take_offers = True
    db.session.commit()
    assert "附近的预警会推送给您" in client.get("/field/").get_data(as_text=True)


def test_one_distance_format_on_the_page_and_in_the_alert(field, auth, client, fake_clock, app):
    with app.test_request_context():
        assert labels.distance(148) == "150 米" and labels.distance(1480) == "1.5 公里"
        assert labels.distance(996) == "1.0 公里" and labels.distance_away(148) == "距离 150 米"
    warning, offer = offered_to_mj2(field, fake_clock)
    # The colleague stands 148 m from the person.
    warning.lat, warning.lon = field.colleague.lat + 148 / 111_195, field.colleague.lon
    db.session.commit()
    with app.test_request_context():
        _title, body = push.texts("offer", warning, offer)
    assert "距离 150 米" in body
    auth.login("mj2")
    html = client.get(f"/field/w/{warning.id}").get_data(as_text=True)
    assert "<dd>150 米</dd>" in html and "距离 150 米" in html
    assert "距离 距离" not in html and "公里" not in html.split("<main")[1].split("aid-h")[0]


def test_no_ascii_colon_inside_chinese_sentences(field, auth, client, fake_clock, make):
    old = make.warning(
        field.station,
        status="accepted",
        owner_id=field.officer.id,
        received_at=fake_clock.now() - timedelta(days=3),
    )
    fieldwork.log_attempt(old, field.officer, client_id=cid(), channel="visit", reached=True)
    fieldwork.resolve(old, field.officer, client_id=cid(), outcome="persuaded", note="已劝阻")
    fieldwork.log_attempt(
        field.warning, field.officer, client_id=cid(), channel="phone", reached=False, note="关机"
    )
    db.session.commit()
    auth.login("mj1")
    for path in (
        f"/field/w/{field.warning.id}",
        f"/field/w/{old.id}",
        "/field/",
        "/field/settings",
    ):
        html = client.get(path).get_data(as_text=True)
        text = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
        assert not re.search(r"[\u4e00-\u9fff）]\s*:|:\s*[\u4e00-\u9fff（]", text), path


def test_the_officers_timeline_tells_what_the_chiefs_does(field, auth, client):
    fieldwork.log_attempt(
        field.warning, field.officer, client_id=cid(), channel="phone", reached=False, note="关机"
    )
    db.session.commit()
    auth.login("mj1")
    html = client.get(f"/field/w/{field.warning.id}").get_data(as_text=True)
    timeline = html.split('id="timeline"')[1]
    assert "未联系上" in timeline and "关机" in timeline


def test_queue_banner_counts_in_the_languages_plural_forms(field, auth, client):
    auth.login("mj1")
    client.post("/lang", data={"lang": "en", "csrf_token": auth.csrf("/field/"), "next": "/field/"})
    html = client.get("/field/").get_data(as_text=True)
    strings = json.loads(re.search(r'id="field-strings">(.*?)</script>', html, re.S).group(1))
    assert strings["problems"] == {
        "one": "{n} entry could not be applied; see below.",
        "other": "{n} entries could not be applied; see below.",
    }
    assert strings["pending"]["one"].startswith("{n} entry is saved")


# --- the live stream: offers carry their time; a page learns when its offer ends -----------


def test_stream_says_when_my_offer_ends_and_when_it_expires(field, auth, client, app, fake_clock):
    app.config.update(STREAM_SECONDS=0.2)
    warning, offer = offered_to_mj2(field, fake_clock)
    auth.login("mj2")
    first = client.get("/api/v1/me/stream", buffered=True, headers={"Last-Event-ID": "0"})
    text = first.get_data(as_text=True)
    item = json.loads(re.search(r"event: offer\ndata: (.*)", text).group(1))
    assert item["expires_at"] == offer.expires_at.isoformat()
    last = max(int(line[4:]) for line in text.splitlines() if line.startswith("id: "))
    fake_clock.advance(91)
    dispatch.expire(db.session.get(Offer, offer.id), clock.now())
    db.session.commit()
    later = client.get("/api/v1/me/stream", buffered=True, headers={"Last-Event-ID": str(last)})
    changed = [
        json.loads(m)
        for m in re.findall(r"event: changed\ndata: (.*)", later.get_data(as_text=True))
    ]
    mine = [c for c in changed if c["warning_id"] == warning.id and c["event"] == "offer_expired"]
    assert mine and mine[0]["offer_open"] is False and "时间已到" in mine[0]["note"]


def test_the_same_trick_nearby_says_the_day_and_the_amount_as_everywhere(field, auth, client, make):
    """An officer reads it aloud to the resident: the day (no seconds), the loss in 元."""
    lost = make.warning(
        field.station,
        person_phone="13900000000",
        status="accepted",
        owner_id=field.colleague.id,
        received_at=clock.now() - timedelta(days=3),
    )
    fieldwork.resolve(
        lost, field.colleague, client_id=cid(), outcome="already_lost", loss_amount=Decimal("20000")
    )
    db.session.commit()
    auth.login("mj1")
    html = client.get(f"/field/w/{field.warning.id}").get_data(as_text=True)
    line = re.search(r"<li>([^<]*附近有人因同样的骗局被骗[^<]*)</li>", html).group(1).strip()
    day = (clock.now() - timedelta(days=3)).astimezone(ZoneInfo("Asia/Shanghai"))
    assert line.startswith(f"{day.year}年{day.month}月{day.day}日，"), line
    assert "20,000 元" in line and not re.search(r"\d:\d\d", line), line


def test_station_advice_that_is_the_general_advice_is_said_once(field, auth, client):
    """The demo's (and many stations') text for "other" frauds is the general advice itself."""
    general = "未知链接不点击，陌生来电不轻信，个人信息不透露，转账汇款多核实。"
    field.warning.fraud_type = "other"
    db.session.add(TalkingPoints(fraud_type="other", text_zh=general, text_en="General."))
    db.session.commit()
    auth.login("mj1")
    html = client.get(f"/field/w/{field.warning.id}").get_data(as_text=True)
    assert html.count(general) == 1
    db.session.execute(
        sa.update(TalkingPoints).where(TalkingPoints.fraud_type == "other").values(text_zh="先挂断")
    )
    db.session.commit()
    html = client.get(f"/field/w/{field.warning.id}").get_data(as_text=True)
    assert html.count(general) == 1 and "先挂断" in html
