"""The live board, its feed, reassigning, the timeline, amending outcomes, the CSV export."""

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fieldapp import events
from fieldapp.extensions import db
from fieldapp.models import Event, Offer, OutboxMessage
from tests.boarddata import utc, warning


@pytest.fixture
def board(make, fake_clock):
    """Station A (target 300 s) with four open warnings and one resolved; station B one open."""
    now = fake_clock.now()
    a = make.station("A", name="东岭派出所", contact_target_s=300)
    b = make.station("B", name="西山派出所", lat=28.0, lon=115.0)
    chief_a = make.user(a, "chief", "chief_a")
    chief_b = make.user(b, "chief", "chief_b")
    admin = make.user(a, "admin", "root")
    o1 = make.user(a, "officer", "o1", display_name="王警官")
    o2 = make.user(a, "officer", "o2", display_name="李警官")
    o3 = make.user(b, "officer", "o3", display_name="赵警官")
    w = {
        # received 10 min ago, never reached: late, unsuccessful
        "late": warning(
            make,
            a,
            now - timedelta(minutes=10),
            owner=o1,
            accept_s=30,
            status="in_contact",
            attempts=[("phone", False), ("wechat_video", False)],
        ),
        # received 3 min ago, no contact yet: due (past half the target)
        "due": warning(
            make, a, now - timedelta(minutes=3), owner=o2, accept_s=20, fraud_type="fake_loan"
        ),
        # received 1 min ago, nobody left: unassigned, on time, must be on top
        "unassigned": warning(
            make,
            a,
            now - timedelta(minutes=1),
            status="unassigned",
            fraud_type="impersonating_boss",
        ),
        # reached 2 min after receipt: on time
        "reached": warning(
            make,
            a,
            now - timedelta(minutes=20),
            owner=o1,
            accept_s=10,
            contact_s=120,
            status="in_contact",
            attempts=[("visit", True)],
        ),
        "closed": warning(
            make,
            a,
            now - timedelta(hours=2),
            owner=o1,
            accept_s=10,
            contact_s=60,
            outcome="persuaded",
            attempts=[("phone", True)],
        ),
        "other": warning(
            make, b, now - timedelta(minutes=5), owner=o3, accept_s=10, status="accepted"
        ),
    }
    db.session.commit()
    return {
        "a": a,
        "b": b,
        "chief_a": chief_a,
        "chief_b": chief_b,
        "admin": admin,
        "o1": o1,
        "o2": o2,
        "o3": o3,
        "w": w,
    }


def _row_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="w(\d+)"', html)]


def test_chief_sees_own_open_warnings_unassigned_first_then_oldest(board, client, auth):
    auth.login("chief_a")
    html = client.get("/board/").get_data(as_text=True)
    w = board["w"]
    assert _row_ids(html) == [w["unassigned"].id, w["reached"].id, w["late"].id, w["due"].id]
    assert "赵警官" not in html  # station B's officer and warning are invisible
    row = html.split(f'<tr id="w{w["late"].id}"')[1].split("</tr>")[0]
    assert re.search(rf'<tr id="w{w["late"].id}" class="lateness-late', html)
    assert re.search(rf'<tr id="w{w["due"].id}" class="lateness-due', html)
    assert re.search(rf'<tr id="w{w["unassigned"].id}" class="lateness-on_time unassigned', html)
    assert re.search(rf'<tr id="w{w["reached"].id}" class="lateness-on_time', html)
    assert "微信视频" in row  # channel last tried, in Chinese by default
    assert "王警官" in row


def test_board_flags(board, app, fake_clock):
    from fieldapp import board_read

    rows = {
        r.warning.id: r
        for r in board_read.open_warnings(sa.true(), board_read.Filters(), fake_clock.now())
    }
    w = board["w"]
    late = rows[w["late"].id]
    assert (late.late, late.unsuccessful, late.attempts, late.last_channel) == (
        True,
        True,
        2,
        "wechat_video",
    )
    assert late.waited_s == 600
    assert rows[w["reached"].id].unsuccessful is False and rows[w["reached"].id].late is False
    assert rows[w["due"].id].lateness == "due" and rows[w["due"].id].attempts == 0
    assert w["closed"].id not in rows


def test_admin_sees_every_station(board, client, auth):
    auth.login("root")
    ids = _row_ids(client.get("/board/").get_data(as_text=True))
    assert board["w"]["other"].id in ids and len(ids) == 5
    only_b = _row_ids(client.get(f"/board/?station={board['b'].id}").get_data(as_text=True))
    assert only_b == [board["w"]["other"].id]


def test_chief_cannot_widen_scope_with_a_station_filter(board, client, auth):
    auth.login("chief_a")
    ids = _row_ids(client.get(f"/board/?station={board['b'].id}").get_data(as_text=True))
    assert board["w"]["other"].id not in ids and len(ids) == 4


def test_filters(board, client, auth):
    auth.login("chief_a")
    w = board["w"]
    ids = lambda q: _row_ids(client.get("/board/" + q).get_data(as_text=True))  # noqa: E731
    assert ids("?status=unassigned") == [w["unassigned"].id]
    assert ids(f"?officer={board['o1'].id}") == [w["reached"].id, w["late"].id]
    assert ids("?fraud_type=fake_loan") == [w["due"].id]
    assert len(ids("?status=bogus&fraud_type=nope")) == 4  # bad values are ignored, not 500


def test_htmx_request_gets_the_fragment(board, client, auth):
    auth.login("chief_a")
    resp = client.get("/board/", headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    assert "<html" not in html and "<table" in html
    assert "HX-Request" in resp.headers["Vary"]


def test_reassign_from_the_board(board, client, auth):
    auth.login("chief_a")
    w = board["w"]["late"]
    token = auth.csrf("/board/")
    resp = client.post(
        f"/board/warnings/{w.id}/reassign",
        data={"to_user_id": board["o2"].id, "csrf_token": token, "next": "/board/"},
    )
    assert resp.status_code == 302
    db.session.refresh(w)
    assert w.status == "offered"
    offer = db.session.scalar(
        sa.select(Offer).where(Offer.warning_id == w.id, Offer.status == "pending")
    )
    assert offer.officer_id == board["o2"].id and offer.reason == "reassign"
    kinds = [e.kind for e in events.timeline(w.id)]
    assert kinds[-2:] == ["reassigned", "offered"]


def test_reassign_to_another_stations_officer_changes_nothing(board, client, auth):
    auth.login("chief_a")
    w = board["w"]["late"]
    token = auth.csrf("/board/")
    resp = client.post(
        f"/board/warnings/{w.id}/reassign", data={"to_user_id": board["o3"].id, "csrf_token": token}
    )
    assert resp.status_code == 302
    db.session.refresh(w)
    assert w.owner_id == board["o1"].id and w.status == "in_contact"
    assert "reassigned" not in [e.kind for e in events.timeline(w.id)]


def test_other_stations_warning_is_not_found(board, client, auth):
    auth.login("chief_a")
    other = board["w"]["other"]
    assert client.get(f"/board/warnings/{other.id}").status_code == 404
    token = auth.csrf("/board/")
    resp = client.post(
        f"/board/warnings/{other.id}/reassign",
        data={"to_user_id": board["o1"].id, "csrf_token": token},
    )
    assert resp.status_code == 404
    assert client.get("/board/warnings/999999").status_code == 404


def test_timeline_renders_every_event_as_a_sentence(board, client, auth):
    w = board["w"]["late"]
    o1 = board["o1"]
    events.record("received", warning=w, source="api", fraud_type=w.fraud_type)
    events.record(
        "offered",
        warning=w,
        officer_id=o1.id,
        offer_id=1,
        rank=1,
        distance_m=1500,
        reason="dispatch",
    )
    events.record("accepted", warning=w, actor=o1, offer_id=1)
    events.record(
        "attempt", warning=w, actor=o1, attempt_id=1, channel="wechat_video", reached=True
    )
    events.record("delivered", warning=w, offer_id=1, officer_id=o1.id, channel="push")
    events.record("fallback_sms", warning=w, offer_id=1, officer_id=o1.id, channel="sms")
    events.record("confirmed", warning=w, actor=board["o2"], attempt_id=1, confirmation_id=1)
    events.record("help_requested", warning=w, actor=o1)
    events.record("joined", warning=w, actor=board["o2"])
    events.record("resolved", warning=w, actor=o1, outcome="persuaded", app_installed=True)
    events.record("brand_new_kind", warning=w)
    db.session.commit()
    auth.login("chief_a")
    client.set_cookie("lang", "en")
    html = client.get(f"/board/warnings/{w.id}").get_data(as_text=True)
    assert "Warning received from the anti-fraud centre." in html
    assert "Offered to 王警官 (offer 1), 1.5 km away." in html
    assert "Contact attempt by WeChat video call: reached the person." in html
    assert "The phone of 王警官 confirmed the notification arrived." in html
    assert "No receipt from the phone: SMS sent to 王警官." in html
    assert "<strong>李警官</strong>: Confirmed a contact attempt." in html
    assert "Asked the station for help." in html
    assert "<strong>李警官</strong>: Joined to help." in html
    assert "Resolved: Persuaded. Anti-fraud app installed." in html
    assert "Event: brand_new_kind." in html
    assert html.index("anti-fraud centre") < html.index("Resolved: Persuaded")
    client.set_cookie("lang", "zh_CN")
    zh = client.get(f"/board/warnings/{w.id}").get_data(as_text=True)
    assert "Warning received from the anti-fraud centre." not in zh
    assert "收到反诈中心预警。" in zh and "事件：brand_new_kind。" in zh


def test_live_feed_catches_up_after_a_dropped_connection(board, client, auth, app):
    app.config["BOARD_STREAM_SECONDS"] = 0  # one pass, then close, as after ~60 s in production
    w = board["w"]
    first = events.record("accepted", warning=w["due"], actor=board["o2"], offer_id=1)
    db.session.commit()
    seen = first.id
    # While the browser was away: two changes in A, one in B.
    missed1 = events.record(
        "attempt", warning=w["due"], actor=board["o2"], channel="phone", reached=False
    )
    hidden = events.record(
        "attempt", warning=w["other"], actor=board["o3"], channel="phone", reached=True
    )
    missed2 = events.record("unassigned", warning=w["late"])
    db.session.commit()
    auth.login("chief_a")
    resp = client.get("/board/stream", buffered=True, headers={"Last-Event-ID": str(seen)})
    assert resp.mimetype == "text/event-stream"
    body = resp.get_data(as_text=True)
    ids = [int(x) for x in re.findall(r"^id: (\d+)$", body, re.M)]
    assert ids == [seen, missed1.id, missed2.id]  # the start, then nothing missed or repeated
    assert f'"warning_id": {w["due"].id}' in body and "event: changed" in body
    assert hidden.id not in ids and f'"warning_id": {w["other"].id}' not in body
    assert body.startswith("retry: ")
    # Reconnecting from the last id sent gives nothing new.
    again = client.get(
        "/board/stream", buffered=True, headers={"Last-Event-ID": str(ids[-1])}
    ).get_data(as_text=True)
    assert "event: changed" not in again
    # A fresh page load starts from the id it was rendered with (query), when no header.
    fresh = client.get(f"/board/stream?last_id={missed1.id}", buffered=True).get_data(as_text=True)
    assert re.findall(r"^id: (\d+)$", fresh, re.M) == [str(missed1.id), str(missed2.id)]


def test_admin_feed_sees_all_stations(board, client, auth, app):
    app.config["BOARD_STREAM_SECONDS"] = 0
    e = events.record("attempt", warning=board["w"]["other"], channel="phone", reached=True)
    db.session.commit()
    auth.login("root")
    body = client.get(
        "/board/stream", buffered=True, headers={"Last-Event-ID": str(e.id - 1)}
    ).get_data(as_text=True)
    assert f"id: {e.id}" in body


def test_board_page_connects_to_the_feed_from_the_latest_event(board, client, auth):
    auth.login("chief_a")
    html = client.get("/board/").get_data(as_text=True)
    last = db.session.scalar(sa.select(sa.func.max(Event.id)))
    assert 'hx-ext="sse"' in html and f"last_id={last}" in html
    assert "sse:changed" in html and "htmx-sse.min.js" in html
    assert "style=" not in html and "<script>" not in html


def test_amend_outcome_records_event_and_queues_webhook(board, client, auth, make):
    token, _plain = make.token(board["a"], webhook_url="http://127.0.0.1:9/hook")
    w = board["w"]["closed"]
    w.token_id = token.id
    db.session.commit()
    auth.login("chief_a")
    csrf_token = auth.csrf(f"/board/warnings/{w.id}")
    resp = client.post(
        f"/board/warnings/{w.id}/outcome",
        data={"defrauded_after": "1", "later_loss_amount": "8,000.50", "csrf_token": csrf_token},
    )
    assert resp.status_code == 302
    db.session.refresh(w)
    assert w.outcome.defrauded_after is True and str(w.outcome.later_loss_amount) == "8000.50"
    assert w.outcome.amended_by_id == board["chief_a"].id
    event = events.timeline(w.id)[-1]
    assert event.kind == "outcome_amended" and event.data["defrauded_after"] is True
    queued = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "webhook")
    ).all()
    assert [m.payload for m in queued] == [{"warning_id": w.id, "event": "amended"}]


def test_amend_outcome_bad_amount_changes_nothing(board, client, auth):
    w = board["w"]["closed"]
    auth.login("chief_a")
    csrf_token = auth.csrf(f"/board/warnings/{w.id}")
    resp = client.post(
        f"/board/warnings/{w.id}/outcome",
        data={"defrauded_after": "1", "later_loss_amount": "lots", "csrf_token": csrf_token},
    )
    assert resp.status_code == 422
    db.session.refresh(w)
    assert w.outcome.defrauded_after is False
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_amend_without_webhook_queues_nothing(board, client, auth):
    w = board["w"]["closed"]
    auth.login("chief_a")
    csrf_token = auth.csrf(f"/board/warnings/{w.id}")
    client.post(
        f"/board/warnings/{w.id}/outcome", data={"defrauded_after": "1", "csrf_token": csrf_token}
    )
    db.session.refresh(w)
    assert w.outcome.defrauded_after is True
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_officer_cannot_open_the_board(board, client, auth):
    auth.login("o1")
    assert client.get("/board/").status_code == 403
    assert client.get("/board/figures").status_code == 403
    assert client.get("/board/stream").status_code == 403


def _figures_fixture(make, board):
    a, b = board["a"], board["b"]
    o1 = board["o1"]
    # November 2026 in A: persuaded 10000 (phone), refused; in B a persuaded 7777.
    warning(
        make,
        a,
        utc(2026, 11, 3, 2),
        owner=o1,
        accept_s=40,
        contact_s=100,
        outcome="persuaded",
        amount=10000,
        app=True,
        attempts=[("phone", True)],
    )
    warning(
        make,
        a,
        utc(2026, 11, 4, 2),
        owner=o1,
        accept_s=80,
        contact_s=300,
        outcome="refused",
        amount=2000,
        attempts=[("visit", True)],
    )
    warning(
        make,
        b,
        utc(2026, 11, 5, 2),
        owner=board["o3"],
        accept_s=5,
        outcome="persuaded",
        amount=7777,
        attempts=[("phone", True)],
    )
    db.session.commit()


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))


def test_csv_export_has_bom_and_the_numbers_of_the_page(board, client, auth, make):
    _figures_fixture(make, board)
    auth.login("chief_a")
    client.set_cookie("lang", "en")
    q = "period=custom&start=2026-11-01&end=2026-11-20"
    page = client.get(f"/board/figures?{q}").get_data(as_text=True)
    resp = client.get(f"/board/figures.csv?{q}")
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    rows = {r[0]: r[1:] for r in _csv_rows(resp.data) if r}
    # By hand: 2 received in A (B's 7777 is not ours), 1 persuaded of 2 → 50.0 %.
    assert rows["Warnings received"][0] == "2"
    assert rows["Persuasion rate"][0] == "50.0%"
    assert rows["Losses avoided (yuan)"][0] == "10000.00"
    assert rows["Time to accept, median (s)"][0] == "60"  # (40 + 80) / 2
    assert rows["Anti-fraud app installs"][0] == "1"
    assert "7777" not in resp.data.decode("utf-8-sig")
    # The page shows the same numbers, written for the reader (separators, the unit named).
    on_page = {
        "Warnings received": "2",
        "Persuasion rate": "50.0%",
        "Losses avoided (yuan)": "10,000 yuan",
        "Time to accept, median (s)": "60",
    }
    for name, shown in on_page.items():
        assert re.search(
            rf"<th scope=\"row\">{re.escape(name)}</th>"
            rf"<td class=\"num\" data-label=\"This period\">{re.escape(shown)}</td>",
            page,
        )


def test_csv_in_chinese_opens_in_excel(board, client, auth, make):
    _figures_fixture(make, board)
    auth.login("chief_a")
    data = client.get("/board/figures.csv?period=custom&start=2026-11-01&end=2026-11-30").data
    text = data.decode("utf-8-sig")
    assert "东岭派出所" in text and "\r\n" in text


def test_county_ranking_only_for_admin(board, client, auth, make):
    _figures_fixture(make, board)
    q = "period=custom&start=2026-11-01&end=2026-11-30"
    auth.login("chief_a")
    page = client.get(f"/board/figures?{q}&station={board['b'].id}").get_data(as_text=True)
    assert 'id="ranking"' not in page and "西山派出所" not in page
    auth.logout()
    auth.login("root")
    page = client.get(f"/board/figures?{q}").get_data(as_text=True)
    assert 'id="ranking"' in page
    ranking = page.split('id="ranking"')[1]
    assert ranking.index("西山派出所") < ranking.index("东岭派出所")  # 100 % before 50 %
    assert "<svg" in page and "style=" not in page


def test_figures_bad_period_is_not_an_error(board, client, auth):
    auth.login("chief_a")
    resp = client.get("/board/figures?period=custom&start=2026-13-01&end=x")
    assert resp.status_code == 200
    resp = client.get("/board/figures.csv?period=custom&start=2026-12-01&end=2026-11-01")
    assert resp.status_code == 200


def test_csv_defuses_formulas_in_names(board, client, auth, make):
    board["o1"].display_name = '=HYPERLINK("http://x")'
    _figures_fixture(make, board)
    auth.login("chief_a")
    rows = _csv_rows(
        client.get("/board/figures.csv?period=custom&start=2026-11-01&end=2026-11-30").data
    )
    names = [r[0] for r in rows if r]
    assert '\'=HYPERLINK("http://x")' in names
    assert not any(n.startswith("=") for n in names)
