"""Issue 10 on the officer's phone (360x640, zh-CN): no tap, default or hidden error may write
what did not happen. One test per finding; screenshots go to $FIELDAPP_SHOTS when set."""

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from fieldapp import clock, dispatch, fieldwork
from fieldapp.extensions import db
from fieldapp.models import ContactAttempt, Outcome
from tests import factories
from tests.browser.conftest import login, sw_ready
from tests.fieldsetup import cid

pytestmark = pytest.mark.browser

CHANNEL = 'form[data-kind="attempt"] button[value="phone"]'
QUEUE_PENDING = "() => document.getElementById('queue').dataset.pending"


def shot(page, name: str) -> None:
    folder = os.environ.get("FIELDAPP_SHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"))


@pytest.fixture
def desk(make):
    """A station with an officer who owns a warning, a colleague, an auxiliary and a chief."""
    st = make.station("CG")
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    colleague = make.user(st, "officer", "mj2", on_duty=True, lat=st.lat, lon=st.lon)
    chief = make.user(st, "chief", "sz1")
    w = make.warning(st, address="东岭村12号")
    dispatch.make_offer(w, officer, clock.now())
    dispatch.accept(w, officer, clock.now())
    db.session.commit()
    return {"station": st, "warning": w, "officer": officer, "colleague": colleague, "chief": chief}


@pytest.fixture
def live(app):
    """Live streams that notice a closed page at once (keep-alives every 0.2 s), so a test can
    hold one open and none outlives it."""
    app.config.update(STREAM_SECONDS=20, STREAM_KEEPALIVE_S=0.2)
    yield
    import time

    time.sleep(0.5)


def open_page(context, base: str, path: str, username: str = "mj1"):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base, username, factories.PASSWORD)
    page.goto(f"{base}{path}")
    page.errors = errors
    return page


def attempts(warning_id: int) -> list[ContactAttempt]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(ContactAttempt)
            .where(ContactAttempt.warning_id == warning_id)
            .order_by(ContactAttempt.id)
        )
    )


def outcome(warning_id: int) -> Outcome | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Outcome).where(Outcome.warning_id == warning_id))


def double_tap(page, selector: str, gap_ms: int) -> None:
    """Two taps on the same spot of the screen, `gap_ms` apart, as a hurried thumb does."""
    box = page.locator(selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)
    page.wait_for_timeout(gap_ms)
    page.mouse.click(x, y)


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"]


# --- 1. double tap -------------------------------------------------------------------------


def test_double_tap_online_stores_one_attempt(desk, live_server, context):
    w = desk["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    # Two channels: the server takes the same attempt again within 10 s as a duplicate.
    for round_, (gap, channel) in enumerate(((400, "phone"), (120, "wechat_video")), start=1):
        page.check('input[name="reached"][value="no"]')
        double_tap(page, f'form[data-kind="attempt"] button[value="{channel}"]', gap)
        page.wait_for_timeout(1500)  # any late effect of the second tap has happened by now
        assert [a.reached for a in attempts(w.id)] == [False] * round_
        # The receipt is in view and the answer left the form: nothing to send a second time.
        assert in_viewport(page, "#receipt-attempt .receipt")
        assert page.locator('input[name="reached"]:checked').count() == 0
        assert page.locator("#contacts .attempt").count() == round_
    shot(page, "attempt-saved")
    assert page.errors == []


def test_the_tapped_control_is_busy_until_the_entry_is_stored(desk, live_server, context):
    """While the entry is on its way the form says so and takes no second answer; it is free
    again only once the entry is stored and the receipt shows."""
    w = desk["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    held = []
    page.route("**/api/v1/sync", lambda route: held.append(route))  # waits until let go
    page.check('input[name="reached"][value="no"]')
    page.click(CHANNEL)
    form = page.locator('form[data-kind="attempt"]')
    page.wait_for_function(
        """() => document.querySelector('form[data-kind="attempt"]').dataset.busy === '1'"""
    )
    assert form.get_attribute("aria-busy") == "true"
    buttons = form.locator("button")
    assert buttons.count() >= 4
    assert all(buttons.nth(i).is_disabled() for i in range(buttons.count()))
    assert form.locator("button.is-busy").inner_text() == "正在保存…"
    page.evaluate("sel => document.querySelector(sel).click()", CHANNEL)  # a tap while busy
    page.wait_for_timeout(300)
    assert len(held) == 1 and attempts(w.id) == []
    held[0].continue_()
    page.locator("#receipt-attempt .receipt").wait_for()
    page.wait_for_function(
        """() => !document.querySelector('form[data-kind="attempt"]').hasAttribute('aria-busy')"""
    )
    assert form.locator("button.is-busy").count() == 0
    assert [a.reached for a in attempts(w.id)] == [False]
    assert len(held) == 1 and page.errors == []


# Synthetic taps dispatched the moment the receipt appears (the page moved under the finger),
# so the test does not race the 0.6 s window: at the point of the tap, 30 px from it, 200 px
# above it. A listener on whatever is there says whether the tap reached it, then cancels it.
TAPS_WHEN_THE_RECEIPT_SHOWS = """([x, y]) => {
  window.taps = [];
  const tap = (name, px, py) => {
    const target = document.elementFromPoint(px, py);
    let reached = false;
    const seen = (ev) => { reached = true; ev.preventDefault(); };
    target.addEventListener("click", seen, { once: true });
    const click = { clientX: px, clientY: py, bubbles: true, cancelable: true };
    target.dispatchEvent(new MouseEvent("click", click));
    target.removeEventListener("click", seen);
    window.taps.push({ name, reached });
  };
  window.tapAgain = () => tap("later", x, y);
  new MutationObserver((changes, observer) => {
    if (!document.querySelector("#receipt-attempt .receipt")) return;
    observer.disconnect();
    tap("same", x, y);
    tap("near", x + 30, y + 20);
    tap("far", x, y - 200);
  }).observe(document.body, { childList: true, subtree: true });
}"""


def test_a_tap_where_the_page_just_moved_lands_nowhere(desk, live_server, context):
    """The tail of a double tap, landing on whatever slid under the finger as the receipt
    appeared, is dropped; a tap well away from it, or 0.6 s later, is not."""
    w = desk["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    page.check('input[name="reached"][value="no"]')
    box = page.locator(CHANNEL).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate(TAPS_WHEN_THE_RECEIPT_SHOWS, [x, y])
    page.mouse.click(x, y)
    page.wait_for_function("() => window.taps.length === 3")
    page.wait_for_timeout(700)
    page.evaluate("() => window.tapAgain()")
    reached = {t["name"]: t["reached"] for t in page.evaluate("() => window.taps")}
    assert reached == {"same": False, "near": False, "far": True, "later": True}
    assert [a.reached for a in attempts(w.id)] == [False]
    assert page.errors == []


def test_double_tap_offline_stores_one_attempt(desk, live_server, context):
    w = desk["warning"]
    page = context.new_page()
    login(page, live_server, "mj1", factories.PASSWORD)
    sw_ready(page)
    page.goto(f"{live_server}/field/w/{w.id}")
    context.set_offline(True)
    page.check('input[name="reached"][value="no"]')
    double_tap(page, CHANNEL, 150)
    page.wait_for_function(f"() => ({QUEUE_PENDING})() !== '0'")
    page.wait_for_timeout(700)
    saved = page.evaluate("FieldQueue.all()")
    assert [(e["kind"], e["data"]["reached"]) for e in saved] == [("attempt", False)]
    receipt = page.locator("#receipt-attempt .receipt.offline")
    assert "本机" in receipt.inner_text() and in_viewport(page, "#receipt-attempt .receipt")
    assert page.locator("#contacts .attempt.pending").count() == 1
    shot(page, "attempt-offline")
    context.set_offline(False)
    page.wait_for_function(f"() => ({QUEUE_PENDING})() === '0'")
    assert [a.reached for a in attempts(w.id)] == [False]


# --- 2. no silent defaults -------------------------------------------------------------------


def test_no_answer_is_preselected_and_none_is_sent_for_it(desk, live_server, context):
    w = desk["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    assert page.locator("input[type=radio]:checked").count() == 0
    assert page.locator('form[data-kind="resolve"] select').count() == 0
    page.click(CHANNEL)
    message = page.locator("#attempt-reached-error")
    message.wait_for()
    assert "是否联系上" in message.inner_text()
    assert in_viewport(page, "#attempt-reached-error")
    page.wait_for_timeout(700)  # a tap right after the page moved is taken as a stray one
    page.locator('form[data-kind="resolve"] button[type=submit]').click()
    page.locator("#resolve-outcome-error").wait_for()
    assert in_viewport(page, "#resolve-outcome-error")
    page.wait_for_timeout(300)
    assert page.evaluate("FieldQueue.all()") == []
    assert attempts(w.id) == [] and outcome(w.id) is None
    shot(page, "no-answer")


# --- 3. refusals where the finger is, values kept ------------------------------------------


def test_persuaded_refused_without_a_reached_contact_message_in_view(desk, live_server, context):
    w = desk["warning"]
    fieldwork.log_attempt(w, desk["officer"], client_id=cid(), channel="phone", reached=False)
    db.session.commit()
    page = open_page(context, live_server, f"/field/w/{w.id}")
    page.locator('form[data-kind="resolve"] button[type=submit]').scroll_into_view_if_needed()
    page.check('input[name="outcome"][value="persuaded"]')
    page.fill("#resolve-note", "已劝阻")
    page.locator('form[data-kind="resolve"] button[type=submit]').click()
    page.locator("#resolve-outcome-error").wait_for()
    assert "联系上" in page.locator("#resolve-outcome-error").inner_text()
    assert in_viewport(page, "#resolve-outcome-error")
    assert page.locator('input[name="outcome"][value="persuaded"]').is_checked()
    assert page.input_value("#resolve-note") == "已劝阻"
    shot(page, "persuaded-refused")
    page.wait_for_timeout(300)
    assert outcome(w.id) is None


def test_refused_outcome_keeps_every_value(desk, live_server, context):
    w = desk["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    page.check('input[name="outcome"][value="already_lost"]')
    page.check('input[name="app_installed"]')
    page.fill("#resolve-note", "他说已经转了一笔")
    save = page.locator('form[data-kind="resolve"] button[type=submit]')
    save.click()
    page.locator("#resolve-loss_amount-error").wait_for()
    assert in_viewport(page, "#resolve-loss_amount-error")
    shot(page, "loss-refused")
    page.wait_for_timeout(700)
    # A refusal that only the server can make (the follow-up time lies in the past): shown at
    # its field, every value still there.
    page.fill("#resolve-loss_amount", "5000")
    past = (clock.now() - timedelta(days=1)).astimezone()
    page.fill("#resolve-follow_up_at", past.strftime("%Y-%m-%dT%H:%M"))
    save.click()
    page.locator("#resolve-follow_up_at-error").wait_for()
    assert in_viewport(page, "#resolve-follow_up_at-error")
    page.wait_for_timeout(700)
    assert page.locator('input[name="outcome"][value="already_lost"]').is_checked()
    assert page.locator('input[name="app_installed"]').is_checked()
    assert page.input_value("#resolve-loss_amount") == "5000"
    assert page.input_value("#resolve-note") == "他说已经转了一笔"
    assert outcome(w.id) is None and page.evaluate("FieldQueue.all()") == []
    page.fill("#resolve-follow_up_at", "")
    save.click()
    page.locator("#receipt-top .receipt").wait_for()
    assert in_viewport(page, "#receipt-top .receipt")
    saved = outcome(w.id)
    assert saved.outcome == "already_lost" and saved.loss_amount == 5000
    assert saved.note == "他说已经转了一笔" and saved.app_installed
    assert page.locator('form[data-kind="resolve"]').count() == 0
    shot(page, "resolved")


def test_refused_queued_entry_reopens_in_its_form_and_stops_nagging(desk, live_server, context):
    w = desk["warning"]
    page = context.new_page()
    login(page, live_server, "mj1", factories.PASSWORD)
    sw_ready(page)
    page.goto(f"{live_server}/field/w/{w.id}")
    context.set_offline(True)
    page.check('input[name="outcome"][value="not_fraud"]')
    page.fill("#resolve-note", "是正常网购")
    past = (clock.now() - timedelta(days=1)).astimezone()
    page.fill("#resolve-follow_up_at", past.strftime("%Y-%m-%dT%H:%M"))
    page.locator('form[data-kind="resolve"] button[type=submit]').click()
    page.wait_for_function(f"() => ({QUEUE_PENDING})() === '1'")
    page.goto(f"{live_server}/field/")  # the officer moves on; the entry waits on the phone
    context.set_offline(False)
    page.wait_for_function("() => document.getElementById('queue').dataset.problems === '1'")
    banner = page.locator("#queue")
    assert "1 条记录未能生效" in banner.inner_text()
    shot(page, "queue-refused")
    banner.locator("a", has_text="打开并修改").click()
    page.wait_for_url(f"**/field/w/{w.id}#fix=*")
    page.locator("#resolve-follow_up_at-error").wait_for()
    assert page.locator('input[name="outcome"][value="not_fraud"]').is_checked()
    assert page.input_value("#resolve-note") == "是正常网购"
    shot(page, "queue-fix")
    page.wait_for_timeout(700)
    # Seen once: other pages no longer call for attention.
    other = context.new_page()
    other.goto(f"{live_server}/field/")
    other.wait_for_timeout(500)
    assert other.locator("#queue").is_hidden()
    other.close()
    page.fill("#resolve-follow_up_at", "")
    page.locator('form[data-kind="resolve"] button[type=submit]').click()
    page.locator("#receipt-top .receipt").wait_for()
    assert outcome(w.id).note == "是正常网购"
    assert page.evaluate("FieldQueue.all()") == []
    assert page.locator("#queue").is_hidden()


def test_refused_queued_entry_can_be_discarded(desk, live_server, context):
    """The other way out of a refused entry: 丢弃, confirmed, removes it from the phone and the
    banner goes; nothing is recorded."""
    w = desk["warning"]
    page = context.new_page()
    login(page, live_server, "mj1", factories.PASSWORD)
    sw_ready(page)
    page.goto(f"{live_server}/field/w/{w.id}")
    context.set_offline(True)
    page.check('input[name="outcome"][value="not_fraud"]')
    past = (clock.now() - timedelta(days=1)).astimezone()
    page.fill("#resolve-follow_up_at", past.strftime("%Y-%m-%dT%H:%M"))
    page.locator('form[data-kind="resolve"] button[type=submit]').click()
    page.wait_for_function(f"() => ({QUEUE_PENDING})() === '1'")
    page.goto(f"{live_server}/field/")
    context.set_offline(False)
    page.wait_for_function("() => document.getElementById('queue').dataset.problems === '1'")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#queue button", has_text="丢弃").click()
    page.wait_for_function("() => document.getElementById('queue').hidden")
    assert page.evaluate("FieldQueue.all()") == []
    assert outcome(w.id) is None


# --- 4 and 5. the offer comes first; Join is not for the offered officer ------------------


@pytest.fixture
def offered(make):
    st = make.station("CG")
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    colleague = make.user(st, "officer", "mj2", on_duty=True, lat=st.lat, lon=st.lon)
    chief = make.user(st, "chief", "sz1")
    # 148 m north of the officer: the page and the alert both say 150 m.
    w = make.warning(
        st,
        lat=st.lat + 148 / 111_195,
        lon=st.lon,
        address="东岭村12号",
        note="对方自称淘宝客服，要求先转账激活退款",
    )
    offer = dispatch.make_offer(w, officer, clock.now(), distance_m=148)
    db.session.commit()
    return {
        "station": st,
        "warning": w,
        "offer": offer,
        "officer": officer,
        "colleague": colleague,
        "chief": chief,
    }


def test_accept_decline_and_countdown_come_first_join_is_absent(offered, live_server, context):
    w = offered["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    for selector in (
        '#offer-region form[data-kind="accept"] button',
        '#offer-region form[data-kind="decline"] button',
        "#offer-region .countdown",
    ):
        assert in_viewport(page, selector), selector
    assert page.locator('form[data-kind="join"]').count() == 0
    assert "距离 150 米" in page.locator("#offer-region").inner_text()
    shot(page, "offer-first")
    # A colleague the chief asks to join gets Join; the officer holding the offer never does.
    from fieldapp import helping

    helping.ask_to_join(w, offered["colleague"], offered["chief"])
    db.session.commit()
    page.reload()
    assert page.locator('form[data-kind="join"]').count() == 0
    other = context.browser.new_context(viewport=page.viewport_size, locale="zh-CN")
    colleague = open_page(other, live_server, f"/field/w/{w.id}", username="mj2")
    assert colleague.locator('form[data-kind="join"]').count() == 1
    other.close()
    page.locator('#offer-region form[data-kind="accept"] button').click()
    page.locator("#receipt-top .receipt").wait_for()
    assert page.locator('form[data-kind="attempt"]').count() == 1
    assert page.locator("#offer-region form").count() == 0


# --- 6. an offer that ends while open --------------------------------------------------------


def test_buttons_go_when_the_offer_expires(make, live_server, context):
    st = make.station("CG", ack_timeout_s=4)
    officer = make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    w = make.warning(st)
    db.session.commit()
    page = open_page(context, live_server, "/field/")
    offer = dispatch.make_offer(w, officer, clock.now())
    db.session.commit()
    page.goto(f"{live_server}/field/w/{w.id}")
    accept = page.locator('main form[data-kind="accept"]')
    assert accept.count() == 1
    left = (offer.expires_at - clock.now()).total_seconds()
    page.wait_for_timeout(max(left, 0) * 1000)  # the time is up: the page's clock takes them
    page.wait_for_function("() => !document.querySelector('main form[data-kind=\"accept\"]')")
    assert page.locator('main form[data-kind="decline"]').count() == 0
    assert "时间已到" in page.locator("main").inner_text()
    shot(page, "offer-expired")


def test_buttons_go_when_a_colleague_takes_the_offer(offered, live, live_server, context):
    w = offered["warning"]
    page = open_page(context, live_server, f"/field/w/{w.id}")
    page.wait_for_function("() => document.getElementById('live-alert').dataset.live === 'on'")
    dispatch.reassign(w, offered["colleague"], offered["chief"], clock.now())
    dispatch.accept(w, offered["colleague"], clock.now())
    db.session.commit()
    # The buttons go without a reload. How fast is measured by bench/bench_streams.py (the
    # issue asks for 2 s), not here: a loaded CI machine would make a timed bound flaky.
    page.wait_for_function("() => !document.querySelector('#offer-region form')")
    assert "已接下此预警" in page.locator("#offer-region").inner_text()


# --- 5. live lists and the live alert --------------------------------------------------------


def test_lists_and_alert_follow_a_new_offer_live(make, live, live_server, context):
    st = make.station("CG")
    make.user(st, "officer", "mj1", on_duty=True, lat=st.lat, lon=st.lon)
    db.session.commit()
    page = open_page(context, live_server, "/field/")
    assert "暂无待接预警" in page.locator("main").inner_text()
    page.wait_for_function("() => document.getElementById('live-alert').dataset.live === 'on'")
    w = make.warning(st, person_name="孙八")
    dispatch.dispatch(w)
    db.session.commit()
    alert = page.locator("#live-alert")
    alert.wait_for()
    page.locator(f'main form[data-kind="accept"][data-warning-id="{w.id}"]').wait_for()
    assert "暂无待接预警" not in page.locator("main").inner_text()
    assert alert.locator("#live-accept").is_visible()
    assert "剩余" in alert.locator("#live-countdown").inner_text()
    assert "孙八" not in alert.inner_text()
    assert in_viewport(page, "#live-accept button")
    shot(page, "live-offer")
    alert.locator("#live-accept button").click()
    page.wait_for_url(f"**/field/w/{w.id}")
    page.locator("#receipt-top .receipt").wait_for()
    db.session.expire_all()
    assert db.session.get(type(w), w.id).owner_id is not None
    assert page.locator('form[data-kind="attempt"]').count() == 1


def test_my_warnings_list_follows_a_reassignment_live(desk, live, live_server, context):
    """The officer's own list (not only the offers) follows the stream: a warning the chief
    hands to a colleague leaves 我的在办预警 without a reload."""
    w = desk["warning"]
    page = open_page(context, live_server, "/field/")
    page.wait_for_function("() => document.getElementById('live-alert').dataset.live === 'on'")
    mine = page.locator(f"#owned #w{w.id}")
    assert mine.count() == 1
    dispatch.reassign(w, desk["colleague"], desk["chief"], clock.now())
    db.session.commit()
    page.wait_for_function(f"() => !document.querySelector('#owned #w{w.id}')")
    assert page.errors == []


# --- 8. the test alert where notifications cannot show -----------------------------------


def test_test_alert_shows_in_the_page_when_notifications_are_blocked(desk, live_server, context):
    page = open_page(context, live_server, "/field/")
    assert page.evaluate("Notification.permission") != "granted"
    page.locator("button[data-test-alert]").first.click()
    alert = page.locator("#live-alert")
    alert.wait_for()
    assert "测试提醒" in alert.inner_text()
    # Why nothing else showed, and how to fix it, in the alert itself (in view).
    assert "只能显示在本页" in alert.inner_text() and "已发送" not in alert.inner_text()
    assert in_viewport(page, "#live-alert")
    assert "只能显示在本页" in page.locator("#duty [data-test-result]").inner_text()
    shot(page, "test-alert-blocked")
