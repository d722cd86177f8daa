/* Page behaviour for the officer's app: forms become queued entries, offer countdowns, the
 * service worker (caching and the update banner), the test alert, and a safe logout. */
(function () {
  "use strict";
  var Q = window.FieldQueue;
  var root = document.getElementById("queue");
  if (!Q || !root) return;
  var t = Q.t;

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localInputNow() {
    var d = new Date();
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function toIso(value) { return value ? new Date(value).toISOString() : null; }

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

  // A fresh id for every form on every load: a page served from the cache must not reuse one.
  function renew(form) {
    var input = form.querySelector('input[name="client_id"]');
    if (input) input.value = crypto.randomUUID();
  }

  function dataOf(form, kind, submitter) {
    var f = new FormData(form);
    if (kind === "attempt") {
      var when = form.querySelector("[data-now]");
      return {
        channel: submitter && submitter.name === "channel" ? submitter.value : f.get("channel"),
        reached: f.get("reached") === "yes",
        attempted_at: toIso(when && when.dataset.edited ? f.get("attempted_at") : null) || new Date().toISOString(),
        note: f.get("note") || null
      };
    }
    if (kind === "resolve") {
      return {
        outcome: f.get("outcome"),
        loss_amount: f.get("loss_amount") || null,
        app_installed: f.get("app_installed") === "1",
        follow_up_at: toIso(f.get("follow_up_at")),
        note: f.get("note") || null
      };
    }
    if (kind === "confirm") return { attempt_id: Number(f.get("attempt_id")) };
    return {};
  }

  function onSubmit(ev) {
    var form = ev.target.closest("form.entry-form");
    if (!form) return;
    ev.preventDefault();
    if (form.dataset.busy) return;  // a double tap while the entry is being stored
    form.dataset.busy = "1";
    var kind = form.dataset.kind;
    var idInput = form.querySelector('input[name="client_id"]');
    Q.create(kind, form.dataset.warningId, dataOf(form, kind, ev.submitter), idInput.value)
      .then(function (entry) {
        form.reset();
        renew(form);
        setNow();
        return Q.flush().then(function (out) {
          var mine = out.results.filter(function (r) { return r.client_id === entry.client_id; })[0];
          if (!mine) return;
          var ok = mine.status === "applied" || mine.status === "duplicate";
          flash(mine.detail, ok ? "success" : "error");
          if (ok) {
            var target = form.dataset.goto || null;
            // The saved copies are now out of date: open the pages from the network.
            forget([location.href, target]).then(function () {
              setTimeout(function () { if (target) location.assign(target); else location.reload(); }, 600);
            });
          }
        }, function () { flash(t("saved_offline"), "success"); });
      })
      .catch(function () { renew(form); })
      .then(function () { delete form.dataset.busy; });
  }

  function forget(urls) {
    if (!window.caches) return Promise.resolve();
    return caches.open("fieldapp-pages").then(function (c) {
      return Promise.all(urls.filter(Boolean).map(function (u) { return c["delete"](new URL(u, location.href).href); }));
    }).catch(function () {});
  }

  function setNow() {
    document.querySelectorAll("input[data-now]").forEach(function (input) {
      if (!input.dataset.edited) input.value = localInputNow();
    });
  }

  function countdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.round((new Date(el.dataset.expires).getTime() - now) / 1000);
      el.textContent = left <= 0 ? t("expired") : t("left", { t: Math.floor(left / 60) + ":" + pad(left % 60) });
      el.classList.toggle("late", left <= 30);
    });
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
        var again = document.createElement("button");
        again.type = "button";
        again.className = "small";
        again.textContent = t("reload");
        again.addEventListener("click", function () { location.reload(); });
        document.getElementById("field-flash").appendChild(again);
      }
    });
  }

  function sameUrl(url) { return !url || url.split("#")[0] === location.href.split("#")[0]; }

  // The officer is in the middle of something: a field has the focus or was changed, a dialog
  // is open, or an entry is being stored. The fresh page must not pull that away.
  function idle() {
    if (document.querySelector("dialog[open], form[data-busy]")) return false;
    var active = document.activeElement;
    if (active && active.matches && active.matches("input, textarea, select")) return false;
    return !Array.prototype.some.call(document.querySelectorAll("input, textarea, select"), function (el) {
      if (el.type === "hidden" || el.type === "submit" || el.type === "button") return false;
      if (el.matches("[data-now]") && !el.dataset.edited) return false;
      if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
      if (el.tagName === "SELECT") {
        // With no option marked selected, the browser shows the first one.
        var first = Array.prototype.findIndex.call(el.options, function (o) { return o.defaultSelected; });
        return el.selectedIndex !== Math.max(first, 0);
      }
      return el.value !== el.defaultValue;
    });
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

  function testAlert() {
    var btn = document.getElementById("test-alert");
    if (!btn) return;
    btn.addEventListener("click", function () {
      var out = document.getElementById("test-alert-result");
      btn.disabled = true;
      fetch(btn.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content },
        body: "{}"
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          out.textContent = (r.ok ? t("test_sent") : t("test_failed")) + (body.message || body.error ? " " + (body.message || body.error) : "");
        });
      }, function () { out.textContent = t("offline"); })
        .then(function () { btn.disabled = false; });
    });
  }

  // Logging out: send what can be sent, warn about the rest, then wipe this user's data.
  function logout() {
    var form = document.getElementById("logout-form");
    if (!form) return;
    form.addEventListener("submit", function (ev) {
      if (form.dataset.ready) return;
      ev.preventDefault();
      Q.flush().catch(function () {}).then(Q.count).then(function (n) {
        if (n > 0 && !window.confirm(t("confirm_logout", { n: n }))) return;
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
    if (last && last !== root.dataset.userId && window.caches) caches["delete"]("fieldapp-pages");
  }

  forgetOtherUser();
  restoreScroll();
  document.addEventListener("submit", onSubmit);
  document.addEventListener("input", function (ev) {
    if (ev.target.matches && ev.target.matches("input[data-now]")) ev.target.dataset.edited = "1";
  });
  document.querySelectorAll("form.entry-form").forEach(renew);
  setNow();
  countdowns();
  setInterval(countdowns, 1000);
  serviceWorker();
  testAlert();
  logout();
})();
