"""Offline work: entries wait in IndexedDB, survive a reload, are sent once, conflicts shown."""

import pytest
import sqlalchemy as sa

from fieldapp import clock, dispatch
from fieldapp.extensions import db
from fieldapp.models import ContactAttempt, Outcome
from tests import factories
from tests.browser.conftest import login, open_saved_page, sw_ready

pytestmark = pytest.mark.browser


def count(model, warning_id):
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(model).where(model.warning_id == warning_id)
    )


def pending(page) -> int:
    return page.evaluate("FieldQueue.count()")


def test_offline_attempt_and_outcome_sent_exactly_once(desk, live_server, context):
    w = desk["warning"]
    page, url = open_saved_page(context, live_server, f"/field/w/{w.id}")

    context.set_offline(True)
    page.check('input[name="reached"][value="yes"]')
    page.click('form[data-kind="attempt"] button[value="phone"]')
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '1'")
    page.wait_for_timeout(700)  # a tap right after the receipt moved the page is a stray one
    # Persuaded offline: the reached contact waiting on this phone counts.
    page.check('input[name="outcome"][value="persuaded"]')
    page.check('input[name="app_installed"]')
    page.click('form[data-kind="resolve"] button[type="submit"]')
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '2'")
    assert count(ContactAttempt, w.id) == 0

    page.reload()  # offline: served by the service worker, the queue read back from IndexedDB
    assert page.locator("h1").inner_text().strip().endswith("网购退款")
    assert "张三" in page.content()
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '2'")
    assert "2" in page.locator("#queue-count").inner_text()
    saved = page.evaluate("FieldQueue.all()")
    assert [e["kind"] for e in saved] == ["attempt", "resolve"]
    assert all(e["client_id"] for e in saved)

    context.set_offline(False)  # the online event sends the queue
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '0'")
    assert count(ContactAttempt, w.id) == 1
    assert count(Outcome, w.id) == 1
    outcome = db.session.scalar(sa.select(Outcome).where(Outcome.warning_id == w.id))
    assert outcome.app_installed and outcome.outcome == "persuaded"

    # The same queue replayed (a second tab, a stale copy): still one of each.
    page.evaluate(
        """entries => new Promise((resolve, reject) => {
            const req = indexedDB.open('fieldapp-queue', 1);
            req.onsuccess = () => {
              const tx = req.result.transaction('entries', 'readwrite');
              entries.forEach(e => tx.objectStore('entries').put(e));
              tx.oncomplete = () => { req.result.close(); resolve(); };
              tx.onerror = () => reject(tx.error);
            };
        })""",
        saved,
    )
    results = page.evaluate("FieldQueue.flush().then(out => out.results.map(r => r.status))")
    assert results == ["duplicate", "duplicate"]
    assert pending(page) == 0
    assert count(ContactAttempt, w.id) == 1 and count(Outcome, w.id) == 1


def test_conflict_is_shown_when_reassigned_before_sending(desk, live_server, context):
    w = desk["warning"]
    page, url = open_saved_page(context, live_server, f"/field/w/{w.id}")
    context.set_offline(True)
    page.check('input[name="reached"][value="yes"]')
    page.click('form[data-kind="attempt"] button[value="visit"]')
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '1'")

    dispatch.reassign(w, desk["colleague"], desk["chief"], clock.now())
    db.session.commit()

    context.set_offline(False)
    item = page.locator("#queue-list .queue-item.conflict")
    item.wait_for()  # a problem opens the list by itself
    assert "改派" in item.inner_text()
    assert count(ContactAttempt, w.id) == 0
    # A conflict can only be acknowledged: the entry goes, and so does the banner. (A tap on
    # the spot of the last one within 0.6 s of the page moving would be taken as a stray.)
    page.wait_for_timeout(700)
    item.locator("button", has_text="知道了").click()
    page.wait_for_function("() => document.querySelectorAll('#queue-list li').length === 0")
    assert page.locator("#queue").is_hidden()


def log_out(page) -> None:
    """Open the account menu under the user's name (unless open) and tap Log out."""
    if not page.locator(".account-menu").evaluate("menu => menu.open"):
        page.click(".account-menu summary")
    page.click("#logout-form button")


def test_logout_warns_about_unsent_entries_then_wipes(desk, live_server, context):
    w = desk["warning"]
    page, url = open_saved_page(context, live_server, f"/field/w/{w.id}")
    context.set_offline(True)
    page.check('input[name="reached"][value="no"]')
    page.click('form[data-kind="attempt"] button[value="phone"]')
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '1'")
    page.wait_for_timeout(700)
    messages = []

    def dismiss(d):
        messages.append(d.message)
        d.dismiss()

    page.once("dialog", dismiss)
    log_out(page)
    page.wait_for_timeout(300)
    assert messages and "1" in messages[0]
    assert pending(page) == 1  # cancelled: nothing lost
    context.set_offline(False)
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '0'")
    log_out(page)
    page.wait_for_url("**/login**")
    names = page.evaluate("caches.keys()")
    assert names == []


def test_double_tap_and_two_tabs_record_once(desk, live_server, context):
    w = desk["warning"]
    page = context.new_page()
    login(page, live_server, "mj1", factories.PASSWORD)
    sw_ready(page)
    url = f"{live_server}/field/w/{w.id}"
    page.goto(url)
    other = context.new_page()
    other.goto(url)
    context.set_offline(True)
    page.check('input[name="reached"][value="no"]')
    page.dblclick('form[data-kind="attempt"] button[value="wechat_video"]')
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '1'")
    page.wait_for_timeout(200)
    assert pending(page) == 1
    # Both tabs see the entry and both try to send it when the network returns.
    context.set_offline(False)
    page.wait_for_function("() => document.getElementById('queue').dataset.pending === '0'")
    other.evaluate("FieldQueue.flush().then(() => true)")
    assert count(ContactAttempt, w.id) == 1
