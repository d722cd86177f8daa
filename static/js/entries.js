/* The officer's entry forms, which feed the station's figures.
 *
 * One tap that submits is one intent: its client_id is made then, once, and the form is busy
 * (buttons disabled, visibly) until the entry is stored on the phone and the page shows it;
 * a second tap within a second is the same intent (GOV.UK's data-prevent-double-click).
 * A question left unanswered is asked, never defaulted. After a save the answers are cleared,
 * never reset to another valid answer, so a stray tap finds nothing to send. A refusal is
 * shown at the field that caused it, in view, with every value kept; a refused entry that
 * waited in the queue can be reopened here (#fix=<client_id>) with its values. */
(function () {
  "use strict";
  var Q = window.FieldQueue;
  var P = window.FieldPage;
  if (!Q || !P) return;
  var t = Q.t;
  var S = Q.strings;
  var DOUBLE_TAP_MS = 1000;
  var lastTap = new WeakMap();
  function noop() {}

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function toIso(value) { return value ? new Date(value).toISOString() : null; }
  function toLocalInput(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function dataOf(form, kind, submitter) {
    var f = new FormData(form);
    if (kind === "attempt") {
      var when = form.querySelector("[data-now]");
      var reached = f.get("reached");
      var out = {
        channel: submitter && submitter.name === "channel" ? submitter.value : f.get("channel"),
        attempted_at: toIso(when && when.dataset.edited ? f.get("attempted_at") : null) || new Date().toISOString(),
        note: f.get("note") || null
      };
      // No answer stays no answer: the key is left out, never sent as false.
      if (reached === "yes" || reached === "no") out.reached = reached === "yes";
      return out;
    }
    if (kind === "resolve") {
      return {
        outcome: f.get("outcome") || null,
        loss_amount: f.get("loss_amount") || null,
        app_installed: f.get("app_installed") === "1",
        follow_up_at: toIso(f.get("follow_up_at")),
        note: f.get("note") || null
      };
    }
    if (kind === "confirm") return { attempt_id: Number(f.get("attempt_id")) };
    return {};
  }

  function summaryOf(kind, data) {
    if (kind === "attempt" && data) {
      var reached = data.reached === true ? S.reached_yes : data.reached === false ? S.reached_no : "";
      return [S.channels[data.channel] || "", reached].filter(Boolean).join(" · ");
    }
    if (kind === "resolve" && data) return S.outcomes[data.outcome] || "";
    return "";
  }

  // A reached contact (by `channel`, if given) known to the page, or one waiting on this
  // phone to be sent.
  function hasContact(form, channel) {
    var set = form.querySelector("[data-has-contact]");
    if (set && set.dataset[channel ? "hasVisit" : "hasContact"] === "1") return Promise.resolve(true);
    var id = Number(form.dataset.warningId);
    return Q.all().then(function (rows) {
      return rows.some(function (e) {
        return e.kind === "attempt" && e.warning_id === id && e.data && e.data.reached === true &&
          (!channel || e.data.channel === channel) && (!e.state || e.state === "pending");
      });
    }, function () { return true; });  // cannot tell: the server decides
  }

  /* Answers the page can check before sending: {errors: {field: message}} or null. */
  function check(form, kind, data) {
    var errors = {};
    if (kind === "attempt") {
      if (data.reached === undefined) errors.reached = S.choice.reached;
      if (!data.channel) errors.channel = S.choice.channel;
    }
    if (kind !== "resolve" || !data.outcome) {
      if (kind === "resolve") errors.outcome = S.choice.outcome;
      return Promise.resolve(Object.keys(errors).length ? { errors: errors } : null);
    }
    if (data.outcome === "already_lost" && !(Number(data.loss_amount) > 0)) {
      return Promise.resolve({ errors: { loss_amount: S.code_messages.loss_required } });
    }
    if (data.outcome !== "persuaded") return Promise.resolve(null);
    // The server's rules, said before sending: persuaded needs a reached contact, and where
    // the station asks for it (见面劝阻) a reached visit.
    var rules = form.querySelector("[data-has-contact]");
    var visit = rules && rules.dataset.visitRequired === "1";
    return Promise.all([hasContact(form), visit ? hasContact(form, "visit") : true]).then(function (yes) {
      if (!yes[0]) return { errors: { outcome: S.code_messages.contact_required } };
      if (!yes[1]) return { errors: { outcome: S.code_messages.visit_required } };
      return null;
    });
  }

  function slotFor(form, name) { return document.getElementById(form.dataset.kind + "-" + name + "-error"); }

  /* A server's refusal as {errors, message}: at the fields it names, else for the form. */
  function problemsOf(form, result) {
    var errors = {};
    Object.keys(result.errors || {}).forEach(function (key) {
      var name = key.replace(/^data\./, "");
      if (slotFor(form, name)) errors[name] = S.choice[name] || result.errors[key];
    });
    return { errors: errors, message: Object.keys(errors).length ? null : result.detail };
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (el) { el.textContent = ""; el.hidden = true; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var summary = form.querySelector(".error-summary");
    if (summary) { summary.hidden = true; summary.querySelector(".error-list").textContent = ""; }
  }

  /* The GOV.UK pattern on one card: a summary at the top of the form (focused, announced)
   * and each message at its field; the first field's message is brought into view. */
  function showErrors(form, errors, messages) {
    var kind = form.dataset.kind;
    var summary = form.querySelector(".error-summary");
    var names = Object.keys(errors);
    messages = (messages ? [].concat(messages) : []).filter(Boolean);
    if (!summary) {
      P.receipt(form.dataset.receipt, names.map(function (n) { return errors[n]; }).concat(messages).join(" "), "refused");
      return;
    }
    clearErrors(form);
    var list = summary.querySelector(".error-list");
    names.forEach(function (name) {
      var slot = slotFor(form, name);
      var control = document.getElementById(kind + "-" + name);
      slot.textContent = errors[name];
      slot.hidden = false;
      if (control) control.setAttribute("aria-invalid", "true");
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "#" + kind + "-" + name;
      a.textContent = errors[name];
      li.appendChild(a);
      list.appendChild(li);
    });
    messages.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
    summary.hidden = false;
    P.guard();
    summary.scrollIntoView({ block: "start" });
    var first = names.length ? slotFor(form, names[0]) : null;
    if (first && !P.inView(first)) first.scrollIntoView({ block: "center" });
    summary.focus({ preventScroll: true });
  }

  function setBusy(form, submitter, on) {
    form.querySelectorAll("button").forEach(function (b) { b.disabled = on; });
    if (on) {
      form.dataset.busy = "1";
      form.setAttribute("aria-busy", "true");
      if (submitter) {
        submitter.dataset.label = submitter.textContent;
        submitter.textContent = t("saving");
        submitter.classList.add("is-busy");
      }
      return;
    }
    delete form.dataset.busy;
    delete form.dataset.stored;
    form.removeAttribute("aria-busy");
    if (submitter && submitter.dataset.label) {
      submitter.textContent = submitter.dataset.label;
      delete submitter.dataset.label;
      submitter.classList.remove("is-busy");
    }
  }

  // The entry is stored: its answers leave the form (to nothing, never to another answer).
  function clearAnswers(form) {
    form.querySelectorAll("input[type=radio], input[type=checkbox]").forEach(function (i) { i.checked = i.defaultChecked = false; });
    form.querySelectorAll("textarea, input[type=number], input[type=text]").forEach(function (i) { i.value = i.defaultValue = ""; });
    form.querySelectorAll("input[type=datetime-local]").forEach(function (i) {
      if (i.matches("[data-now]")) delete i.dataset.edited; else i.value = i.defaultValue = "";
    });
    delete form.dataset.fixing;
    clearErrors(form);
    P.settle();
  }

  function fill(form, kind, data) {
    data = data || {};
    function set(name, value) {
      var el = form.querySelector('[name="' + name + '"]');
      if (el && value != null) el.value = value;
    }
    function choose(name, value) {
      form.querySelectorAll('input[name="' + name + '"]').forEach(function (i) { i.checked = i.value === value; });
    }
    if (kind === "attempt") {
      if (data.reached === true || data.reached === false) choose("reached", data.reached ? "yes" : "no");
      set("note", data.note);
      var when = form.querySelector("[data-now]");
      if (when && data.attempted_at) { when.value = toLocalInput(data.attempted_at); when.dataset.edited = "1"; }
    }
    if (kind === "resolve") {
      choose("outcome", data.outcome);
      set("loss_amount", data.loss_amount);
      set("note", data.note);
      set("follow_up_at", toLocalInput(data.follow_up_at));
      var app = form.querySelector('[name="app_installed"]');
      if (app) app.checked = !!data.app_installed;
    }
  }

  function stamp(text, what) {
    return text + "\n" + (what ? what + " · " : "") + P.clockTime(new Date());
  }

  function applied(form, result, slot, what) {
    var text = stamp(result.detail || t("sent"), what);
    clearAnswers(form);
    form.dataset.stored = "1";
    lastTap.set(form, Date.now());
    if (form.dataset.goto) {
      P.carryReceipt(form.dataset.goto, "receipt-top", text, "saved");
      return P.forget([form.dataset.goto]).then(function () {
        location.assign(form.dataset.goto);
        return new Promise(noop);  // busy until the next page replaces this one
      });
    }
    return P.refresh().catch(noop).then(function () {
      P.receipt(slot, text, "saved");
      lastTap.set(form, Date.now());
    });
  }

  function offline(form, slot, what) {
    clearAnswers(form);
    form.dataset.stored = "1";
    lastTap.set(form, Date.now());
    P.receipt(slot, stamp(t("saved_offline"), what), "offline");
    renderPending();
  }

  function answered(form, entry, out, slot, what) {
    var r = (out.results || []).filter(function (x) { return x.client_id === entry.client_id; })[0];
    if (!r) {
      // Sent meanwhile by another tab, or still waiting behind other entries.
      return Q.get(entry.client_id).then(function (left) {
        return left ? offline(form, slot, what) : applied(form, {}, slot, what);
      });
    }
    if (r.status === "applied" || r.status === "duplicate") return applied(form, r, slot, what);
    // Refused in front of the officer: shown at the form, so the queue does not keep it.
    return Q.remove(entry.client_id).then(function () {
      if (r.status === "rejected" && form.querySelector(".error-summary")) {
        var p = problemsOf(form, r);
        showErrors(form, p.errors, p.message);
        return;
      }
      // The world moved on (a conflict): the page as it is now, and why, where the tap was.
      return P.refresh().catch(noop).then(function () { P.receipt(slot, r.detail, "refused"); });
    });
  }

  function save(form, kind, data, submitter) {
    var slot = form.dataset.receipt || "receipt-top";
    var what = summaryOf(kind, data);
    var fixing = form.dataset.fixing;
    var clientId = crypto.randomUUID();  // the officer's intent, read once at this tap
    form.querySelector('input[name="client_id"]').value = clientId;
    return Q.create(kind, form.dataset.warningId, data, clientId).then(function (entry) {
      return (fixing ? Q.remove(fixing) : Promise.resolve()).then(function () {
        return Q.flush().then(function (out) {
          return answered(form, entry, out, slot, what);
        }, function () { return offline(form, slot, what); });
      });
    });
  }

  function onSubmit(ev) {
    var form = ev.target.closest && ev.target.closest("form.entry-form");
    if (!form) return;
    ev.preventDefault();
    // A tap within a second of storing an entry is the same intent, twice.
    if (form.dataset.busy || Date.now() - (lastTap.get(form) || 0) < DOUBLE_TAP_MS) return;
    var kind = form.dataset.kind;
    var submitter = ev.submitter || null;
    var data = dataOf(form, kind, submitter);
    setBusy(form, submitter, true);
    check(form, kind, data).then(function (found) {
      if (found) return showErrors(form, found.errors, found.message);
      clearErrors(form);
      return save(form, kind, data, submitter);
    }).catch(function () {
      P.receipt(form.dataset.receipt || "receipt-top", t("saved_here"), "refused");
    }).then(function () { setBusy(form, submitter, false); });
  }

  /* Entries waiting on this phone show in the contacts list, marked as waiting. */
  function renderPending() {
    var box = document.getElementById("contacts");
    var list = box && box.querySelector(".attempt-list");
    if (!list) return;
    var id = Number(box.dataset.warningId);
    Q.all().then(function (rows) {
      list.querySelectorAll(".attempt.pending").forEach(function (el) { el.remove(); });
      rows.filter(function (e) {
        return e.warning_id === id && (e.kind === "attempt" || e.kind === "resolve") && (!e.state || e.state === "pending");
      }).forEach(function (e) {
        var div = document.createElement("div");
        div.className = "attempt pending";
        var p = document.createElement("p");
        var at = new Date((e.data && e.data.attempted_at) || e.recorded_at);
        p.textContent = at.toLocaleString() + " · " + summaryOf(e.kind, e.data) + " · " + t("state_pending");
        div.appendChild(p);
        list.appendChild(div);
      });
      var none = list.querySelector(".no-attempts");
      if (none) none.hidden = !!list.querySelector(".attempt");
    }).catch(noop);
  }

  /* A refused queued entry, opened from the queue list: its form, its values, its message. */
  function openFix() {
    var m = /^#fix=([A-Za-z0-9_-]+)$/.exec(location.hash);
    if (!m) return;
    Q.get(m[1]).then(function (e) {
      if (!e) return;
      Q.markSeen(e.client_id);
      var form = document.querySelector('form.entry-form[data-kind="' + e.kind + '"][data-warning-id="' + e.warning_id + '"]');
      if (!form || !form.querySelector(".error-summary")) {
        P.receipt("receipt-top", [t("fix_gone"), e.detail].filter(Boolean).join(" "), "refused");
        return;
      }
      fill(form, e.kind, e.data);
      form.dataset.fixing = e.client_id;
      var p = problemsOf(form, { code: e.code, errors: e.errors, detail: e.detail });
      showErrors(form, p.errors, [p.message, t("fixing")]);
    }).catch(noop);
  }

  document.addEventListener("submit", onSubmit);
  document.addEventListener("fieldapp:refreshed", renderPending);
  window.addEventListener("hashchange", openFix);
  Q.onSent(renderPending);
  window.FieldEntries = { renderPending: renderPending };
  renderPending();
  openFix();
})();
