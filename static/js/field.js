/* Page behaviour for the officer's app: the page's regions refreshed in place, offer
 * countdowns that take the buttons away when time is up, receipts, the service worker
 * (caching and the update banner), the test alert, and a safe logout.
 * The entry forms themselves are entries.js; it uses window.FieldPage from here. */
(function () {
  "use strict";
  var Q = window.FieldQueue;
  var root = document.getElementById("queue");
  if (!Q || !root) return;
  var t = Q.t;
  var PAGE_CACHE = "fieldapp-pages";

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localInputNow() {
    var d = new Date();
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function clockTime(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }

  function flash(text, kind) {
    var p = document.getElementById("field-flash");
    if (!p) {
      p = document.createElement("p");
      p.id = "field-flash";
      p.setAttribute("role", "status");
      root.parentNode.insertBefore(p, root);
    }
    p.className = "flash flash-" + (kind || "success");
    p.textContent = text;
  }

  // When the page moves after a tap (a receipt appears, a message scrolls into view), the
  // tail of a double tap must not land on whatever slid under the finger (a radio, the call
  // link): for a moment after such a move, a tap near the last one lands nowhere.
  var SETTLE_MS = 600;
  var NEAR_PX = 48;
  var lastPoint = null;
  var guarded = null;
  document.addEventListener("pointerdown", function (ev) { lastPoint = { x: ev.clientX, y: ev.clientY }; }, true);
  function guard() { guarded = lastPoint && { x: lastPoint.x, y: lastPoint.y, until: Date.now() + SETTLE_MS }; }
  document.addEventListener("click", function (ev) {
    if (!guarded || Date.now() > guarded.until) return;
    if (Math.abs(ev.clientX - guarded.x) <= NEAR_PX && Math.abs(ev.clientY - guarded.y) <= NEAR_PX) {
      ev.preventDefault();
      ev.stopPropagation();
    }
  }, true);

  function inView(el) {
    var r = el.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= window.innerHeight;
  }

  /* A receipt (or a refusal) where the officer's finger was: the slot next to the control.
   * It is brought into view, never left off-screen. */
  function receipt(slotId, text, kind) {
    var slot = document.getElementById(slotId) || document.getElementById("receipt-top");
    if (!slot) { flash(text, kind === "refused" ? "error" : "success"); return null; }
    var p = document.createElement("p");
    p.className = "receipt" + (kind && kind !== "saved" ? " " + kind : "");
    p.textContent = text;
    slot.textContent = "";
    slot.hidden = false;
    slot.appendChild(p);
    guard();
    if (!inView(slot)) slot.scrollIntoView({ block: "center" });
    return p;
  }

  /* --- regions refreshed in place ------------------------------------------------------- */

  // A field the officer is using or has changed: a refresh must not take it from under them.
  function changed(el) {
    if (el.type === "hidden" || el.type === "submit" || el.type === "button") return false;
    if (el.matches("[data-now]")) return !!el.dataset.edited;
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    if (el.tagName === "SELECT") {
      // With no option marked selected, the browser shows the first one.
      var first = Array.prototype.findIndex.call(el.options, function (o) { return o.defaultSelected; });
      return el.selectedIndex !== Math.max(first, 0);
    }
    return el.value !== el.defaultValue;
  }

  function inUse(region) {
    // A form busy storing an entry is in use, until the entry is stored: then the page may
    // show what the server made of it.
    if (region.querySelector("form[data-busy]:not([data-stored]), form[data-fixing]")) return true;
    var active = document.activeElement;
    if (active && region.contains(active) && active.matches("input, textarea, select")) return true;
    return Array.prototype.some.call(region.querySelectorAll("input, textarea, select"), changed);
  }

  // What differs on every render of the same state (tokens, fresh ids, clocks) is not news.
  function normalise(html) {
    return html
      .replace(/(name="(?:csrf_token|client_id)" value=")[^"]*/g, "$1")
      .replace(/(data-now[^>]*value=")[^"]*|(value=")[^"]*("[^>]*data-now)/g, "$1$2$3")
      .replace(/(data-expires="[^"]*"[^>]*>)[^<]*/g, "$1");
  }

  function swap(doc) {
    document.querySelectorAll("[data-region]").forEach(function (el) {
      var fresh = doc.getElementById(el.id);
      // Replaced only when it says something new: an echo of the officer's own change
      // (the live stream) leaves the page, and any finger on it, alone.
      if (!fresh || inUse(el) || normalise(el.innerHTML) === normalise(fresh.innerHTML)) return;
      el.replaceWith(document.importNode(fresh, true));
    });
    settle();
    document.dispatchEvent(new CustomEvent("fieldapp:refreshed"));
  }

  var refreshing = null;
  var again = false;
  /* Fetch this page from the network and swap its regions in; resolves when the page shows
   * the server's state. Calls during a refresh are folded into one more. */
  function refresh() {
    if (refreshing) { again = true; return refreshing; }
    var url = location.href.split("#")[0];
    refreshing = fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Fieldapp-Refresh": "1" }
    }).then(function (resp) {
      if (!resp.ok || resp.redirected) throw new Error("refresh " + resp.status);
      if (window.caches) {
        // The saved copy for offline use follows what the page now shows.
        var copy = resp.clone();
        caches.open(PAGE_CACHE).then(function (c) { return c.put(url, copy); }).catch(function () {});
      }
      return resp.text();
    }).then(function (html) {
      swap(new DOMParser().parseFromString(html, "text/html"));
    }).then(function () {
      refreshing = null;
      if (again) { again = false; return refresh(); }
    }, function (err) {
      refreshing = null;
      again = false;
      throw err;
    });
    return refreshing;
  }

  /* --- offers: countdowns and their end ------------------------------------------------- */

  // When the time is up the buttons go at once (the server's worker moves the offer on a
  // moment later; the live stream then tells the page, which refreshes to say why).
  function endOffer(box) {
    if (box.dataset.over) return;
    box.dataset.over = "1";
    box.querySelectorAll("[data-offer-actions]").forEach(function (el) { el.remove(); });
    var note = document.createElement("p");
    note.className = "notice warn offer-ended";
    note.setAttribute("role", "status");
    note.textContent = t("offer_over");
    box.appendChild(note);
    setTimeout(function () { refresh().catch(function () {}); }, 1500);
  }

  function countdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      if (!el.dataset.expires) return;
      var left = Math.ceil((new Date(el.dataset.expires).getTime() - now) / 1000);
      el.textContent = left <= 0 ? t("expired") : t("left", { t: Math.floor(left / 60) + ":" + pad(left % 60) });
      el.classList.toggle("late", left <= 30);
      var box = el.closest("[data-offer]");
      if (left <= 0 && box) endOffer(box);
      if (left <= 0 && !box) document.dispatchEvent(new CustomEvent("fieldapp:expired", { detail: el }));
    });
  }

  function setNow() {
    document.querySelectorAll("input[data-now]").forEach(function (input) {
      if (!input.dataset.edited) input.value = localInputNow();
    });
  }

  // After a load or a swap: fresh controls get the time now, forms check answers themselves.
  function settle() {
    document.querySelectorAll("form.entry-form").forEach(function (f) { f.noValidate = true; });
    setNow();
    countdowns();
  }

  /* A receipt carried over a navigation (an accept that opens the warning). */
  function carriedReceipt() {
    try {
      var saved = JSON.parse(sessionStorage.getItem("fieldapp-receipt") || "null");
      sessionStorage.removeItem("fieldapp-receipt");
      if (saved && saved.url === location.pathname) receipt(saved.slot, saved.text, saved.kind);
    } catch (e) { /* nothing carried */ }
  }

  function carryReceipt(url, slot, text, kind) {
    try {
      sessionStorage.setItem("fieldapp-receipt", JSON.stringify({
        url: new URL(url, location.href).pathname, slot: slot, text: text, kind: kind
      }));
    } catch (e) { /* private mode: the page itself shows the new state */ }
  }

  /* --- service worker --------------------------------------------------------------------- */

  function forget(urls) {
    if (!window.caches) return Promise.resolve();
    return caches.open(PAGE_CACHE).then(function (c) {
      return Promise.all(urls.filter(Boolean).map(function (u) { return c["delete"](new URL(u, location.href).href); }));
    }).catch(function () {});
  }

  function cacheUrls(reg) {
    var worker = reg.active || navigator.serviceWorker.controller;
    if (!worker) return;
    var urls = [];
    document.querySelectorAll('script[src], link[rel="stylesheet"], link[rel="manifest"], link[rel="icon"]').forEach(function (el) {
      urls.push(el.src || el.href);
    });
    document.querySelectorAll("a[data-offline]").forEach(function (a) { urls.push(a.href); });
    // This page, when the worker served it, is saved (and re-checked) by the worker already.
    var saved = navigator.serviceWorker.controller && window.caches ? caches.match(location.href) : Promise.resolve(null);
    saved.catch(function () { return null; }).then(function (hit) {
      if (!hit) urls.unshift(location.href);
      worker.postMessage({ type: "CACHE_URLS", urls: urls });
    });
  }

  function serviceWorker() {
    if (!("serviceWorker" in navigator)) return;
    var banner = document.getElementById("sw-update");
    var reloading = false;
    navigator.serviceWorker.register(root.dataset.swUrl, { scope: "/" }).then(function (reg) {
      function offer(worker) {
        if (!worker || !navigator.serviceWorker.controller) return;
        banner.hidden = false;
        document.getElementById("sw-update-btn").onclick = function () {
          worker.postMessage({ type: "SKIP_WAITING" });
        };
      }
      if (reg.waiting) offer(reg.waiting);
      reg.addEventListener("updatefound", function () {
        var w = reg.installing;
        w.addEventListener("statechange", function () { if (w.state === "installed") offer(w); });
      });
      navigator.serviceWorker.ready.then(cacheUrls);
    }).catch(function () {});
    navigator.serviceWorker.addEventListener("controllerchange", function () {
      if (banner && !banner.hidden && !reloading) { reloading = true; location.reload(); }
    });
    navigator.serviceWorker.addEventListener("message", function (ev) {
      if (ev.data && ev.data.type === "queue-changed") Q.render().then(function () { Q.flush().catch(function () {}); });
      if (ev.data && ev.data.type === "page-gone") { location.reload(); return; }
      if (ev.data && ev.data.type === "page-updated" && sameUrl(ev.data.url)) {
        if (ev.data.fresh && idle()) { showFresh(); return; }
        flash(t(ev.data.fresh ? "page_newer" : "page_stale"), "success");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "small";
        button.textContent = t("reload");
        button.addEventListener("click", function () { location.reload(); });
        document.getElementById("field-flash").appendChild(button);
      }
    });
  }

  function sameUrl(url) { return !url || url.split("#")[0] === location.href.split("#")[0]; }

  // The officer is in the middle of something: a field has the focus or was changed, a dialog
  // is open, or an entry is being stored. The fresh page must not pull that away.
  function idle() {
    if (document.querySelector("dialog[open]")) return false;
    return !inUse(document.body);
  }

  // The service worker has just saved the fresh copy: open it (from the cache, no second
  // fetch), keeping the officer's place on the page.
  function showFresh() {
    try { sessionStorage.setItem("fieldapp-scroll", JSON.stringify({ url: location.href, y: window.scrollY })); } catch (e) { /* private mode */ }
    location.replace(location.href.split("#")[0]);
  }

  function restoreScroll() {
    try {
      var saved = JSON.parse(sessionStorage.getItem("fieldapp-scroll") || "null");
      sessionStorage.removeItem("fieldapp-scroll");
      if (saved && saved.url === location.href) window.scrollTo(0, saved.y);
    } catch (e) { /* nothing to restore */ }
  }

  /* --- the test alert ------------------------------------------------------------------- */

  // "Sent" is only half the answer: where the phone will not show a notification, the page
  // shows the alert itself and says why and how to allow notifications.
  function testAlert(btn) {
    var out = btn.parentNode.parentNode.querySelector("[data-test-result]") || document.querySelector("[data-test-result]");
    var L = window.FieldLive;
    var say = function (key) { return L ? L.t(key) : ""; };
    var supported = "Notification" in window;
    btn.disabled = true;
    // Not asked yet: this tap may ask (on the home page, which can also subscribe to push).
    var asked = supported && Notification.permission === "default" && window.FieldDuty
      ? window.FieldDuty.enablePush() : Promise.resolve();
    asked.then(function () {
      return FieldNet.postJSON(btn.dataset.url, "{}");
    }).then(function (r) {
      if (!r.ok) { out.textContent = say("test_failed"); return; }
      var permission = supported ? Notification.permission : "unsupported";
      if (permission === "granted") { out.textContent = say("test_sent"); return; }
      var why = say(permission === "denied" ? "test_blocked" : permission === "default" ? "test_off" : "test_unsupported");
      if (L) L.showTest(why);
      out.textContent = why;
    }, function () { out.textContent = t("offline"); })
      .then(function () { btn.disabled = false; });
  }

  // Logging out: send what can be sent, warn about the rest, then wipe this user's data.
  function logout() {
    var form = document.getElementById("logout-form");
    if (!form) return;
    form.addEventListener("submit", function (ev) {
      if (form.dataset.ready) return;
      ev.preventDefault();
      Q.flush().catch(function () {}).then(Q.count).then(function (n) {
        if (n > 0 && !window.confirm(Q.plural("confirm_logout", n))) return;
        var wipes = [Q.clearAll()];
        if (window.caches) {
          wipes.push(caches.keys().then(function (keys) {
            return Promise.all(keys.map(function (k) { return caches["delete"](k); }));
          }));
        }
        return Promise.all(wipes).catch(function () {}).then(function () {
          form.dataset.ready = "1";
          form.submit();
        });
      });
    });
  }

  // A shared phone where the last officer's session simply ran out (no logout): their saved
  // pages must not be shown to the next one.
  function forgetOtherUser() {
    var last = null;
    try { last = localStorage.getItem("fieldapp-user"); localStorage.setItem("fieldapp-user", root.dataset.userId); } catch (e) { return; }
    if (last && last !== root.dataset.userId && window.caches) caches["delete"](PAGE_CACHE);
  }

  window.FieldPage = {
    refresh: refresh, receipt: receipt, carryReceipt: carryReceipt, forget: forget, guard: guard,
    flash: flash, settle: settle, clockTime: clockTime, inView: inView, changed: changed
  };

  forgetOtherUser();
  restoreScroll();
  document.addEventListener("input", function (ev) {
    if (ev.target.matches && ev.target.matches("input[data-now]")) ev.target.dataset.edited = "1";
  });
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("button[data-test-alert]");
    if (btn) testAlert(btn);
  });
  settle();
  carriedReceipt();
  setInterval(countdowns, 1000);
  serviceWorker();
  logout();
})();
