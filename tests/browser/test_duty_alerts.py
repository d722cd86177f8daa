"""The duty switch, live alerts and the service worker's push listeners in chromium.

Uses the browser suite's session chromium and live server (tests/browser/conftest.py).
"""

import time

import pytest
import sqlalchemy as sa

from fieldapp import dispatch
from fieldapp.extensions import db
from fieldapp.models import Event, User, Warning

pytestmark = pytest.mark.browser

LAT, LON = 27.8170, 114.9230


def short_streams(app):
    """The browser reconnects (with Last-Event-ID); after the test no stream is left open
    while the tables are emptied."""
    app.config.update(STREAM_SECONDS=1.0)


def finish(context):
    context.close()
    time.sleep(1.5)  # let the last stream response end


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        if check():
            return True
        time.sleep(0.1)
    return False


def test_going_on_duty_posts_position_and_live_offer_alerts(app, make, live_server, browser):
    short_streams(app)
    station = make.station("BR", lat=LAT, lon=LON)
    officer = make.user(station, "officer", "br_off")
    db.session.commit()
    officer_id = officer.id
    context = browser.new_context(
        base_url=live_server,
        permissions=["geolocation"],
        geolocation={"latitude": LAT + 0.001, "longitude": LON},
        locale="zh-CN",
    )
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.fill("input[name=username]", "br_off")
    page.fill("input[name=password]", "correct-horse-42")
    page.click("main button[type=submit]")
    page.wait_for_url("**/field/")
    assert page.locator("#duty-status").inner_text().startswith("未值班")
    page.click("label[for=duty-toggle]")
    page.wait_for_function(
        "() => document.getElementById('duty-status').textContent.startsWith('值班中')"
    )
    assert wait_for(lambda: db.session.get(User, officer_id).position_at is not None)
    me = db.session.get(User, officer_id)
    assert me.duty_status == "on_duty"
    assert abs(me.lat - (LAT + 0.001)) < 1e-6
    page.wait_for_function(
        "() => document.getElementById('duty-position-at').textContent.indexOf(':') > 0"
    )
    # The live connection is open: an offer now appears with its (personal-data-free) text.
    page.wait_for_function("() => document.getElementById('duty-live').textContent.length > 0")
    w = make.warning(station, lat=LAT, lon=LON, person_name="孙八", person_phone="13500001111")
    dispatch.dispatch(w)
    db.session.commit()
    assert db.session.scalar(sa.select(Event.kind).where(Event.kind == "offered"))
    page.wait_for_selector("#live-alert:not([hidden])", timeout=10_000)
    title = page.locator("#live-title").inner_text()
    assert title.startswith("新预警")
    assert "孙八" not in page.locator("#live-alert").inner_text()
    assert not errors, errors
    finish(context)


READ_QUEUE = """() => indexedDB.databases().then((dbs) => new Promise((resolve) => {
    if (!dbs.some((d) => d.name === 'fieldapp-queue')) return resolve([]);
    const req = indexedDB.open('fieldapp-queue');
    req.onsuccess = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('entries')) { db.close(); return resolve([]); }
      const all = db.transaction('entries').objectStore('entries').getAll();
      all.onsuccess = () => { db.close(); resolve(all.result); };
    };
    req.onerror = () => resolve([]);
}))"""

TEST_SW = """
importScripts('/static/js/fieldnet.js', '/static/js/sw-push.js');
// Test only: remember what the app's push listener asked the browser to show. Headless
// Chromium may close a shown notification at once, so getNotifications() alone would flake.
const show = self.registration.showNotification.bind(self.registration);
self.shown = [];
self.registration.showNotification = (title, options) => show(title, options).then(() => {
  self.shown.push([title, options]);
});
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
// Test only: turn a page message into the events a push service and a tap would cause.
self.addEventListener('message', (e) => {
  if (e.data.push) {
    self.dispatchEvent(new PushEvent('push', {data: JSON.stringify(e.data.push)}));
    // A synthetic event's waitUntil keeps nothing alive: hold the worker while it shows.
    e.waitUntil(new Promise((r) => setTimeout(r, 1500)));
  }
  if (e.data.shown) {
    e.source.postMessage({shown: self.shown.map(([t, o]) =>
      [t, o.body, o.tag, o.actions.map((a) => a.title)])});
  }
  if (e.data.click) {
    const find = () => self.registration.getNotifications().then((list) =>
      list.find((x) => x.data && x.data.warning_id === e.data.click.warning_id));
    e.waitUntil(find().then((n) => n || (self.shown.length
      ? show(...self.shown[self.shown.length - 1]).then(find) : n)).then((n) => {
      self.dispatchEvent(new NotificationEvent('notificationclick',
        {notification: n, action: e.data.click.action}));
      return new Promise((r) => setTimeout(r, 1500));
    }));
  }
});
"""


def test_service_worker_shows_pushes_posts_receipts_and_queues_accept(
    app, make, live_server, browser, fake_clock
):
    from flask import Response

    from fieldapp import worker
    from fieldapp.models import Offer, PushSubscription
    from tests.pushservice import PushService

    short_streams(app)
    app.add_url_rule(
        "/test-sw.js", "test_sw", lambda: Response(TEST_SW, mimetype="text/javascript")
    )
    station = make.station("SW", lat=LAT, lon=LON)
    officer = make.user(station, "officer", "sw_off", on_duty=True, lat=LAT, lon=LON)
    service = PushService()
    app.config["PUSH_ALLOW_INSECURE_ENDPOINTS"] = True
    device = service.device()
    db.session.add(
        PushSubscription(
            user_id=officer.id, endpoint=device.endpoint, p256dh=device.p256dh, auth=device.auth
        )
    )
    w = make.warning(station, lat=LAT, lon=LON, person_name="周九", person_phone="13300002222")
    offer = dispatch.dispatch(w)
    db.session.commit()
    worker.run_once()
    service.close()
    [payload] = device.payloads()  # exactly what a real push service would hand the browser
    offer_id = offer.id
    officer_id = officer.id

    context = browser.new_context(base_url=live_server, permissions=["notifications"])
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", "sw_off")
    page.fill("input[name=password]", "correct-horse-42")
    page.click("main button[type=submit]")
    page.wait_for_url("**/field/")
    # A page with none of the app's scripts (a logged-in /login redirects to /field/, whose
    # update flow reloads on controllerchange): the test worker claims it undisturbed.
    page.goto("/healthz")
    page.evaluate(
        """async () => {
        await navigator.serviceWorker.register('/test-sw.js', {scope: '/'});
        await navigator.serviceWorker.ready;
    }"""
    )
    page.wait_for_function(
        "() => navigator.serviceWorker.controller !== null"
        " && navigator.serviceWorker.controller.scriptURL.endsWith('/test-sw.js')"
    )
    page.evaluate("(p) => navigator.serviceWorker.controller.postMessage({push: p})", payload)
    assert wait_for(lambda: db.session.get(Offer, offer_id).delivered_at is not None)
    # The receipt and the notification are sent side by side: the receipt may land first.
    shown = """() => new Promise((resolve) => {
        navigator.serviceWorker.addEventListener('message', (e) => {
            if (e.data.shown) resolve(e.data.shown);
        }, {once: true});
        navigator.serviceWorker.controller.postMessage({shown: true});
    })"""
    titles: list = []

    def notifications_shown() -> bool:
        titles[:] = page.evaluate(shown)
        return bool(titles)

    assert wait_for(notifications_shown)
    assert titles == [[payload["title"], payload["body"], payload["tag"], ["接受", "查看"]]]
    assert "周九" not in str(titles)
    # An empty queue database already exists (made by a page before its store existed):
    # the service worker must still find or create the "entries" store.
    page.evaluate(
        """() => new Promise((r) => {
        const req = indexedDB.open('fieldapp-queue');
        req.onsuccess = () => { req.result.close(); r(); };
    })"""
    )
    # Accept goes through /api/v1/sync; where that endpoint is missing (404) or the network
    # is gone, the entry waits in IndexedDB for the page's queue to replay.
    page.evaluate(
        "(id) => navigator.serviceWorker.controller.postMessage("
        "{click: {warning_id: id, action: 'accept'}})",
        w.id,
    )
    warning_id = w.id
    if "/api/v1/sync" in {r.rule for r in app.url_map.iter_rules()}:
        assert wait_for(lambda: db.session.get(Warning, warning_id).owner_id == officer_id)
    else:
        entries = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not entries:
            entries = page.evaluate(READ_QUEUE)
            time.sleep(0.2)
        [entry] = entries
        assert entry["kind"] == "accept" and entry["warning_id"] == warning_id
        assert entry["user_id"] == officer_id and len(entry["client_id"]) == 36
        assert set(entry) == {"client_id", "kind", "warning_id", "data", "recorded_at", "user_id"}
    finish(context)
