"""The officer's pages: what they show, who may see them, the no-JavaScript form path, size."""

import gzip
import re
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from fieldapp import dispatch, fieldread, fieldwork, helping
from fieldapp.extensions import db
from fieldapp.models import ContactAttempt, Event, TalkingPoints
from tests.fieldsetup import cid


def test_warning_page_shows_what_the_officer_needs(field, auth, client, make, fake_clock):
    db.session.add(
        TalkingPoints(fraud_type="online_shopping_refund", text_zh="退款原路退回", text_en="x")
    )
    old = make.warning(
        field.station,
        status="accepted",
        owner_id=field.colleague.id,
        received_at=fake_clock.now() - timedelta(days=20),
    )
    fieldwork.resolve(
        old, field.colleague, client_id=cid(), outcome="already_lost", loss_amount=Decimal("20000")
    )
    field.warning.address = "东岭村12号"
    db.session.commit()
    auth.login("mj1")
    html = client.get(f"/field/w/{field.warning.id}").get_data(as_text=True)
    for needle in (
        "张三",
        'href="tel:13800138000"',
        "uri.amap.com/marker",
        "api.map.baidu.com/marker",
        "东岭村12号",
        "退款原路退回",
        "20,000",
        'value="wechat_video"',
        'data-kind="resolve"',
        "国家反诈中心APP",
        'data-kind="help"',
    ):
        assert needle in html, needle
    # Every control has a label; no inline script or style (CSP).
    assert "<script>" not in html and "style=" not in html and "onclick" not in html


def test_other_station_gets_404_and_colleague_can_join(field, auth, client):
    helping.request_help(field.warning, field.officer)
    auth.login("mjx")
    assert client.get(f"/field/w/{field.warning.id}").status_code == 404
    auth.logout()
    auth.login("mj2")
    html = client.get(f"/field/w/{field.warning.id}").get_data(as_text=True)
    assert 'data-kind="join"' in html and 'data-kind="attempt"' not in html


def test_no_js_form_path_records_once(field, auth, client):
    auth.login("mj1")
    token = auth.csrf(f"/field/w/{field.warning.id}")
    form = {
        "csrf_token": token,
        "client_id": cid(),
        "kind": "attempt",
        "channel": "visit",
        "reached": "yes",
        "attempted_at": "2026-11-25T09:55",
        "note": "",
    }
    for _ in range(2):
        resp = client.post(f"/field/w/{field.warning.id}/entry", data=form)
        assert resp.status_code == 302
    [a] = db.session.scalars(sa.select(ContactAttempt)).all()
    assert a.channel == "visit" and a.attempted_at.hour == 1 and a.attempted_at.minute == 55
    bad = dict(form, client_id=cid(), channel="fax")
    resp = client.post(f"/field/w/{field.warning.id}/entry", data=bad)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert re.search(r'id="attempt-channel-error">[^<]+</p>', html), "message at the channels"
    assert db.session.scalar(sa.select(sa.func.count(ContactAttempt.id))) == 1


def test_confirmations_page_and_index_lists(field, auth, client, fake_clock, make):
    fieldwork.log_attempt(
        field.warning, field.officer, client_id=cid(), channel="phone", reached=True
    )
    w2 = make.warning(field.station)
    dispatch.make_offer(w2, field.officer, fake_clock.now())
    db.session.commit()
    auth.login("fj1")
    html = client.get("/field/confirmations").get_data(as_text=True)
    assert 'data-kind="confirm"' in html
    auth.logout()
    auth.login("mj1")
    html = client.get("/field/").get_data(as_text=True)
    assert "data-expires" in html and 'data-kind="accept"' in html
    assert f"/field/w/{field.warning.id}" in html


def test_admin_edits_talking_points(field, make, auth, client):
    make.user(field.station, "admin", "root")
    db.session.commit()
    auth.login("root")
    token = auth.csrf("/field/talking-points")
    resp = client.post(
        "/field/talking-points",
        data={
            "csrf_token": token,
            "fake_loan-zh": "先交钱的都是诈骗",
            "fake_loan-en": "Pay-first loans are scams",
        },
    )
    assert resp.status_code == 302
    assert fieldread.talking_points("fake_loan", "zh_CN") == "先交钱的都是诈骗"
    assert db.session.scalar(sa.select(Event.kind).where(Event.kind == "talking_points_edited"))
    auth.logout()
    auth.login("mj1")
    assert client.get("/field/talking-points").status_code == 403


def test_first_load_of_the_officer_home_is_small(field, auth, client, fake_clock, make):
    """HTML plus every script and stylesheet it loads, gzipped: at most 60 KB."""
    w2 = make.warning(field.station)
    dispatch.make_offer(w2, field.officer, fake_clock.now())
    db.session.commit()
    auth.login("mj1")
    html = client.get("/field/").data
    total = len(gzip.compress(html))
    assets = re.findall(rb'<(?:script[^>]+src|link[^>]+rel="stylesheet"[^>]+href)="([^"]+)"', html)
    assert len(assets) >= 4  # css, fieldnet.js, field.js, duty.js
    # htmx (52 KB) is the board's alone: no officer page loads it.
    for page in ("/field/", f"/field/w/{w2.id}", "/field/settings"):
        assert b"htmx" not in client.get(page).data, page
    for url in assets:
        body = client.get(url.decode()).data
        assert body, url
        total += len(gzip.compress(body))
    assert total <= 60 * 1024, total
