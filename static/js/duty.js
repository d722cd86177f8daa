/* The duty switch, position reporting and the live connection of the officer's app.
 *
 * Going on duty (a tap, so a user gesture) asks for notification permission, subscribes to
 * push with the server's VAPID key and registers the subscription, then starts a
 * battery-friendly watchPosition: the position is posted when it moved more than 100 m or
 * every 3 minutes. On every officer page an EventSource on /api/v1/me/stream announces new
 * offers (with Accept and the time left) with a WebAudio tone and vibration, and tells the
 * page when a warning it shows changed, so its lists and offers follow without a reload.
 * All text comes from the server (#duty-i18n, #live-i18n).
 */
(function () {
  "use strict";

  var root = document.getElementById("duty") || document.createElement("div");
  var dutyStrings = document.getElementById("duty-i18n");
  var T = dutyStrings ? JSON.parse(dutyStrings.textContent) : {};
  var cfg = root.dataset;
  var toggle = document.getElementById("duty-toggle");
  var statusEl = document.getElementById("duty-status");
  var positionAt = document.getElementById("duty-position-at");
  var pushEl = document.getElementById("duty-push");
  var liveEl = document.getElementById("duty-live");
  var MOVE_M = 100;
  var EVERY_MS = 3 * 60 * 1000;

  function postJSON(url, body, method) {
    return FieldNet.postJSON(url, body, method).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.status === 204 ? {} : r.json();
    });
  }

  function say(el, text) {
    if (el) el.textContent = text;
  }

  function clock(iso) {
    var d = new Date(iso);
    return d.toLocaleTimeString(document.documentElement.lang || "zh-CN", { hour: "2-digit", minute: "2-digit" });
  }

  /* --- sound and vibration ------------------------------------------------------------ */

  var audio = null;
  function unlockAudio() {
    // Browsers only let a page make sound after a tap; the duty switch is that tap.
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audio) audio = new Ctx();
    if (audio.state === "suspended") audio.resume();
  }

  function alarm() {
    if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 400]);
    if (!audio) return;
    var t = audio.currentTime;
    [0, 0.35, 0.7].forEach(function (offset, i) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = i % 2 ? 660 : 880;
      gain.gain.setValueAtTime(0.0001, t + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, t + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + offset + 0.3);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + offset);
      osc.stop(t + offset + 0.32);
    });
  }

  /* --- push subscription -------------------------------------------------------------- */

  function keyBytes(b64) {
    var s = b64.replace(/-/g, "+").replace(/_/g, "/");
    s += "===".slice((s.length + 3) % 4);
    var raw = atob(s);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function enablePush() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      say(pushEl, T.push_unsupported);
      return Promise.resolve();
    }
    return Notification.requestPermission()
      .then(function (permission) {
        if (permission !== "granted") {
          say(pushEl, T.push_denied);
          return null;
        }
        return navigator.serviceWorker.ready.then(function (reg) {
          return fetch(cfg.vapidUrl, { credentials: "same-origin" })
            .then(function (r) { return r.json(); })
            .then(function (body) {
              return reg.pushManager.getSubscription().then(function (existing) {
                return existing || reg.pushManager.subscribe({
                  userVisibleOnly: true,
                  applicationServerKey: keyBytes(body.key),
                });
              });
            })
            .then(function (sub) { return postJSON(cfg.subscribeUrl, sub.toJSON()); })
            .then(function () { say(pushEl, T.push_on); });
        });
      })
      .catch(function () { say(pushEl, T.push_failed); });
  }

  /* --- position ----------------------------------------------------------------------- */

  var watchId = null;
  var lastSent = null; // {lat, lon, at}
  var latest = null;
  var timer = null;

  function metres(a, b) {
    var r = 6371008.8, rad = Math.PI / 180;
    var dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * r * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function sendPosition(fix) {
    return postJSON(cfg.positionUrl, { lat: fix.lat, lon: fix.lon, accuracy_m: fix.accuracy })
      .then(function (body) {
        lastSent = { lat: fix.lat, lon: fix.lon, at: Date.now() };
        positionAt.dateTime = body.position_at;
        positionAt.textContent = clock(body.position_at);
      })
      .catch(function () { /* the next fix or tick tries again */ });
  }

  function onFix(pos) {
    latest = { lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: Math.round(pos.coords.accuracy) };
    if (!lastSent || metres(lastSent, latest) > MOVE_M || Date.now() - lastSent.at >= EVERY_MS) {
      sendPosition(latest);
    }
  }

  function startWatching() {
    if (!("geolocation" in navigator)) {
      say(pushEl, T.geo_unsupported);
      return;
    }
    if (watchId !== null) return;
    // Coarse, cached fixes are enough to rank officers and spare the battery.
    watchId = navigator.geolocation.watchPosition(onFix, function (err) {
      if (err.code === err.PERMISSION_DENIED) say(statusEl, T.geo_denied);
    }, { enableHighAccuracy: false, maximumAge: 60000, timeout: 60000 });
    timer = setInterval(function () {
      // A standing officer still reports every few minutes, so the position stays fresh.
      if (latest && (!lastSent || Date.now() - lastSent.at >= EVERY_MS)) sendPosition(latest);
    }, 30000);
  }

  function stopWatching() {
    if (watchId !== null) navigator.geolocation.clearWatch(watchId);
    watchId = null;
    if (timer) clearInterval(timer);
    timer = null;
  }

  /* --- the switch --------------------------------------------------------------------- */

  function render(on) {
    toggle.checked = on;
    root.classList.toggle("on", on);
    say(statusEl, on ? T.on : T.off);
  }

  /* --- live connection ---------------------------------------------------------------- */

  var box = document.getElementById("live-alert");
  var LT = JSON.parse((document.getElementById("live-i18n") || { textContent: "{}" }).textContent);
  var Q = window.FieldQueue;
  var P = window.FieldPage;
  var acceptForm = document.getElementById("live-accept");
  var countdown = document.getElementById("live-countdown");
  var note = document.getElementById("live-note");
  var shownWarning = null;

  function urlFor(template, id) { return template.replace("999999999", String(id)); }

  // The warning this page is about (its own page), if any.
  function pageWarningId() {
    var el = document.getElementById("contacts");
    return el ? Number(el.dataset.warningId) : null;
  }

  function offerOver(text) {
    acceptForm.hidden = true;
    countdown.hidden = true;
    countdown.dataset.expires = "";
    note.textContent = "";
    var p = document.createElement("p");
    p.className = "receipt refused";
    p.textContent = text || (Q ? Q.t("offer_over") : "");
    note.appendChild(p);
  }

  var lastShown = { key: "", at: 0 };
  function show(item) {
    // The live stream and a forwarded push may both announce one offer: alert once, but
    // take the time left from whichever carries it.
    var key = item.kind + ":" + item.warning_id;
    var again = key === lastShown.key && Date.now() - lastShown.at < 15000;
    lastShown = { key: key, at: Date.now() };
    var offer = item.kind === "offer" && item.warning_id;
    if (again && !(offer && item.expires_at)) return;
    document.getElementById("live-title").textContent = item.title || "";
    document.getElementById("live-body").textContent = item.body || "";
    var open = document.getElementById("live-open");
    open.hidden = !item.warning_id && !item.url;
    open.href = item.url || (item.warning_id ? urlFor(box.dataset.warningUrl, item.warning_id) : "#");
    note.textContent = "";
    if (item.note) {
      var p = document.createElement("p");
      p.className = "receipt offline";
      p.textContent = item.note;
      note.appendChild(p);
    }
    shownWarning = offer ? item.warning_id : null;
    acceptForm.hidden = !offer;
    if (offer) {
      acceptForm.dataset.warningId = String(item.warning_id);
      acceptForm.action = urlFor(box.dataset.entryUrl, item.warning_id);
      acceptForm.dataset.goto = urlFor(box.dataset.warningUrl, item.warning_id);
    }
    countdown.hidden = !(offer && item.expires_at);
    countdown.dataset.expires = offer && item.expires_at ? item.expires_at : "";
    box.hidden = false;
    if (!again && (item.kind === "offer" || item.kind === "help")) alarm();
  }

  function refreshPage() {
    if (P) P.refresh().catch(function () {});
  }

  // An offer that ended takes its notification (and the Accept on it) off the screen too.
  function closeNotifications(warningId) {
    if (!navigator.serviceWorker) return;
    navigator.serviceWorker.ready.then(function (reg) { return reg.getNotifications(); }).then(function (list) {
      list.forEach(function (n) { if (n.data && n.data.warning_id === warningId) n.close(); });
    }).catch(function () {});
  }

  // Something changed on a warning: the page follows when it shows that warning (its own
  // page, or a list that has it), and the alert drops an offer that is no longer open.
  function changed(item) {
    if (item.offer_open === false) {
      if (shownWarning === item.warning_id) offerOver(item.note);
      closeNotifications(item.warning_id);
    }
    var here = pageWarningId();
    if (here === item.warning_id) { refreshPage(); return; }
    if (here === null && document.querySelector('[data-region] [data-warning-id="' + item.warning_id + '"]')) refreshPage();
  }

  function heard(item) {
    if (item.kind === "changed") { changed(item); return; }
    // On the warning's own page the page itself shows the offer (refreshed), with sound.
    if (item.warning_id && item.warning_id === pageWarningId()) {
      refreshPage();
      if (item.kind === "offer" || item.kind === "help") alarm();
      return;
    }
    show(item);
    if (item.kind === "offer" || item.kind === "reassigned") refreshPage();
  }

  function connect() {
    if (!("EventSource" in window)) return;
    var source = new EventSource(box.dataset.streamUrl, { withCredentials: true });
    source.onopen = function () { box.dataset.live = "on"; say(liveEl, LT.live_on); };
    // EventSource reconnects by itself (catching up by Last-Event-ID).
    source.onerror = function () { box.dataset.live = "off"; say(liveEl, LT.live_off); };
    ["offer", "help", "reassigned", "taken", "changed"].forEach(function (kind) {
      source.addEventListener(kind, function (e) {
        var item;
        try { item = JSON.parse(e.data); } catch (err) { return; /* ignore a malformed line */ }
        heard(item);
      });
    });
  }

  if (box) {
    document.getElementById("live-dismiss").addEventListener("click", function () { box.hidden = true; });
    document.addEventListener("fieldapp:expired", function (ev) { if (ev.detail === countdown) offerOver(); });
    // A push that arrives while the page is open: the service worker forwards it.
    if (navigator.serviceWorker) {
      navigator.serviceWorker.addEventListener("message", function (e) {
        if (e.data && e.data.type === "fieldapp-push" && e.data.payload && e.data.payload.kind !== "reminder") {
          heard(e.data.payload);
        }
      });
    }
    window.FieldLive = {
      t: function (key) { return LT[key] || key; },
      // The test alert as the page shows it, with why no notification appears (`why`).
      showTest: function (why) { show({ kind: "test", title: LT.test_title, body: LT.test_body, note: why }); }
    };
    connect();
  }

  document.addEventListener("pointerdown", unlockAudio, { once: true });
  if (!toggle) return;
  window.FieldDuty = { enablePush: enablePush };

  toggle.addEventListener("change", function () {
    var on = toggle.checked;
    unlockAudio();
    toggle.disabled = true;
    postJSON(cfg.dutyUrl, { status: on ? "on_duty" : "off_duty" })
      .then(function () {
        render(on);
        if (on) {
          startWatching();
          return enablePush();
        }
        stopWatching();
      })
      .catch(function () {
        render(!on);
        say(statusEl, T.save_failed);
      })
      .then(function () { toggle.disabled = false; });
  });

  if (cfg.positionAt) {
    positionAt.dateTime = cfg.positionAt;
    positionAt.textContent = clock(cfg.positionAt);
  }
  var onDuty = cfg.status === "on_duty";
  render(onDuty);
  // Already on duty (a reload): resume reporting, but never prompt for anything on page load.
  if (onDuty && navigator.permissions) {
    navigator.permissions.query({ name: "geolocation" }).then(function (p) {
      if (p.state === "granted") startWatching();
    }).catch(function () {});
  }
})();
