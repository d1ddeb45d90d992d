// The session clock, kept forms and form history of every page (web/ui/session.py has the rules).
//
// - Before the inactivity timeout a banner warns ("Your session ends in 2 minutes") with a
//   "Stay signed in" button: a cheap authenticated request that keeps the session alive.
// - When the session has ended, what was typed in the page's forms is kept in this tab's
//   sessionStorage, keyed by the user and the page. Never kept: passwords, the user ids of a
//   signature or a witness, files, hidden fields (CSRF token, idempotency key). After logging in
//   again, the same page puts the values back and says so; nothing is signed or sent by itself.
// - A form sent while the session had already ended is kept the same way (the server answers
//   with the login page and changes nothing).
// - A page drawn as the answer to a refused form puts its GET address into the history entry,
//   so the back button later opens the page instead of sending the form again.
// Values are only ever put back with .value / .checked (never as markup).
(function () {
  "use strict";

  var body = document.body;
  var PREFIX = "batchline.draft:";
  var SEEN = "batchline.session.seen";
  var MAX_VALUE = 20000;      // characters of one kept value (a longer one is not kept)
  var MAX_DRAFT = 200000;     // characters of one page's kept forms
  var MAX_FIELDS = 200;
  var MAX_AGE = 8 * 3600 * 1000;  // a shift: older kept forms are dropped
  var NEVER = /^(password|witness_password|signer_id|witness_id|csrf_token|idempotency_key|event_key|release_key)$/;

  // --- history: a refused form's page is re-opened with a GET, never re-posted -------------
  var pageUrl = body.getAttribute("data-page-url");
  if (pageUrl && /^\/(?!\/)/.test(pageUrl) && window.history && history.replaceState) {
    try { history.replaceState(history.state, "", pageUrl); } catch (e) { /* keep the address */ }
  }

  // --- storage ---------------------------------------------------------------------------
  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  function draftKey(user, path) { return PREFIX + user + ":" + path; }

  function readDraft(key) {
    var store = storage();
    if (!store) return null;
    try {
      var draft = JSON.parse(store.getItem(key) || "null");
      if (!draft || typeof draft !== "object" || !draft.forms || typeof draft.forms !== "object") return null;
      if (typeof draft.saved !== "number" || Date.now() - draft.saved > MAX_AGE) return null;
      return draft;
    } catch (e) { return null; }
  }

  function drop(key) {
    var store = storage();
    if (store) { try { store.removeItem(key); } catch (e) { /* nothing kept */ } }
  }

  function allDraftKeys() {
    var store = storage(), keys = [];
    if (!store) return keys;
    for (var i = 0; i < store.length; i++) {
      var k = store.key(i);
      if (k && k.indexOf(PREFIX) === 0) keys.push(k);
    }
    return keys;
  }

  function keepable(el) {
    if (!el.name || NEVER.test(el.name) || el.disabled) return false;
    if (el.closest && el.closest("[data-keep=no]")) return false;
    var type = (el.type || "").toLowerCase();
    return ["password", "hidden", "file", "submit", "button", "reset", "image"].indexOf(type) < 0;
  }

  // each keepable field by "name#n" (the n-th field of that name in the form)
  function fields(form) {
    var out = [], seen = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!keepable(el)) return;
      seen[el.name] = (seen[el.name] || 0) + 1;
      out.push({ id: el.name + "#" + seen[el.name], el: el });
    });
    return out.slice(0, MAX_FIELDS);
  }

  function formKey(form, index) {
    return form.id || ((form.getAttribute("action") || "") + "#" + index);
  }

  function collect(form) {
    var kept = {}, count = 0;
    fields(form).forEach(function (f) {
      var el = f.el, type = (el.type || "").toLowerCase();
      if (type === "checkbox" || type === "radio") {
        if (el.checked !== el.defaultChecked) { kept[f.id] = el.checked; count++; }
      } else if (el.tagName === "SELECT") {
        var changed = false, chosen = [];
        Array.prototype.forEach.call(el.options, function (o) {
          if (o.selected !== o.defaultSelected) changed = true;
          if (o.selected) chosen.push(o.value);
        });
        if (changed) { kept[f.id] = chosen; count++; }
      } else if (el.value !== el.defaultValue && el.value.length <= MAX_VALUE) {
        kept[f.id] = el.value; count++;
      }
    });
    return count ? kept : null;
  }

  function forms() {
    return Array.prototype.filter.call(document.forms, function (form) {
      return (form.getAttribute("method") || "").toLowerCase() === "post" && !/\/logout$/.test(form.getAttribute("action") || "");
    });
  }

  function saveDraft(user, reason) {
    var store = storage();
    if (!store || !user) return false;
    var kept = {}, any = false;
    forms().forEach(function (form, i) {
      var values = collect(form);
      if (values) { kept[formKey(form, i)] = values; any = true; }
    });
    var key = draftKey(user, location.pathname + location.search);
    if (!any) { drop(key); return false; }
    var text = JSON.stringify({ saved: Date.now(), reason: reason, forms: kept });
    if (text.length > MAX_DRAFT) return false;
    try { store.setItem(key, text); return true; } catch (e) { return false; }
  }

  function restore(draft) {
    var put = 0;
    forms().forEach(function (form, i) {
      var values = draft.forms[formKey(form, i)];
      if (!values || typeof values !== "object") return;
      fields(form).forEach(function (f) {
        if (!Object.prototype.hasOwnProperty.call(values, f.id)) return;
        var el = f.el, value = values[f.id], type = (el.type || "").toLowerCase();
        if (type === "checkbox" || type === "radio") {
          if (typeof value !== "boolean") return;
          el.checked = value;
        } else if (el.tagName === "SELECT") {
          if (!Array.isArray(value)) return;
          Array.prototype.forEach.call(el.options, function (o) { o.selected = value.indexOf(o.value) >= 0; });
        } else {
          if (typeof value !== "string" || value.length > MAX_VALUE) return;
          el.value = value;
        }
        put++;
        var folded = el.closest && el.closest("details");
        if (folded) folded.open = true;  // a kept value is never hidden in a collapsed form
        el.dispatchEvent(new Event("input", { bubbles: true }));
        el.dispatchEvent(new Event("change", { bubbles: true }));
      });
    });
    return put;
  }

  function notice(id, cls, text) {
    var main = document.getElementById("main") || body;
    var box = document.getElementById(id) || document.createElement("div");
    box.id = id;
    box.className = "flash " + cls;
    box.setAttribute("role", "status");
    box.textContent = text;
    if (!box.parentNode) main.insertBefore(box, main.firstChild);
    return box;
  }

  function hhmm(ms) {
    var d = new Date(ms), pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  // --- on every page: drop old kept forms; after a login, put this page's back ------------
  var user = body.getAttribute("data-session-user");
  var here = location.pathname + location.search;
  allDraftKeys().forEach(function (key) { if (!readDraft(key)) drop(key); });

  if (user) {
    var afterLogin = body.getAttribute("data-after-login") === "1";
    allDraftKeys().forEach(function (key) {
      var draft = readDraft(key);
      if (!draft || key.indexOf(draftKey(user, "")) !== 0) return;
      var samePage = key === draftKey(user, here);
      if (samePage && !pageUrl && (afterLogin || draft.reason === "timeout")) {
        drop(key);
        if (restore(draft)) {
          notice("draft-restored", "flash-info",
            "What you typed before your session ended (kept in this browser at " + hhmm(draft.saved) +
            ") is back in the form. Check every value; passwords and signatures are never kept, so you sign again.");
        }
      } else if (draft.reason === "submit") {
        drop(key);  // the form reached a live session: recorded, or refused and shown again
      }
    });
  } else if (/\/login$/.test(location.pathname)) {
    var next = new URLSearchParams(location.search).get("next");
    var waiting = next && allDraftKeys().some(function (key) { return key.slice(-next.length - 1) === ":" + next; });
    if (waiting) {
      notice("draft-waiting", "flash-info",
        "What you typed on that page is kept in this browser: log in again and it is put back in the form " +
        "(not passwords or signatures).");
    }
  }

  // a form sent from here is kept until the next page shows whether the session was alive
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!user || !form || (form.getAttribute("method") || "").toLowerCase() !== "post") return;
    if (/\/logout$/.test(form.getAttribute("action") || "")) {
      drop(draftKey(user, here));
      return;
    }
    if (!ended) saveDraft(user, "submit");
  }, true);

  // --- the session clock -----------------------------------------------------------------
  var total = parseInt(body.getAttribute("data-session-seconds"), 10);
  var warnAt = parseInt(body.getAttribute("data-session-warn"), 10);
  if (!user || !(total > 0)) return;
  var loaded = Date.now();  // the server saw this page's request a moment ago
  var ended = false;
  var banner = null;

  function markSeen(now) {
    try { localStorage.setItem(SEEN, String(now)); } catch (e) { /* this tab only */ }
  }

  function lastSeen() {
    var other = 0;
    try { other = parseInt(localStorage.getItem(SEEN), 10) || 0; } catch (e) { other = 0; }
    return Math.max(loaded, other <= Date.now() ? other : 0);  // another tab's request counts too
  }
  markSeen(loaded);

  function showBanner() {
    if (banner) return banner;
    banner = document.createElement("div");
    banner.id = "session-warning";
    banner.className = "flash flash-warning";
    banner.setAttribute("role", "alert");
    banner.style.position = "sticky";
    banner.style.top = "0";
    banner.style.zIndex = "1000";
    banner.style.margin = "0";
    var text = document.createElement("span");
    text.id = "session-warning-text";
    var button = document.createElement("button");
    button.type = "button";
    button.id = "stay-signed-in";
    button.className = "button primary small";
    button.textContent = "Stay signed in";
    button.style.marginLeft = "1em";
    button.addEventListener("click", stay);
    var login = document.createElement("a");
    login.id = "log-in-again";
    login.className = "button primary small";
    login.textContent = "Log in again";
    login.style.marginLeft = "1em";
    login.style.display = "none";  // .button sets a display: the hidden attribute alone loses
    login.href = (body.getAttribute("data-login-url") || "/login") + "?next=" + encodeURIComponent(here);
    banner.appendChild(text);
    banner.appendChild(button);
    banner.appendChild(login);
    body.insertBefore(banner, body.firstChild);
    return banner;
  }

  function inWords(ms) {
    var seconds = Math.max(1, Math.ceil(ms / 1000));
    if (seconds > 60) {
      var minutes = Math.ceil(seconds / 60);
      return minutes + " minutes";
    }
    return seconds + " second" + (seconds === 1 ? "" : "s");
  }

  function endSession() {
    if (ended) return;
    ended = true;
    var kept = saveDraft(user, "timeout");
    showBanner();
    document.getElementById("session-warning-text").textContent =
      "Your session has ended after " + Math.round(total / 60) + " minutes without activity. " +
      (kept ? "What you typed on this page is kept in this browser (not passwords) and comes back after you log in again."
            : "Log in again to continue.");
    document.getElementById("stay-signed-in").style.display = "none";
    document.getElementById("log-in-again").style.display = "";
  }

  function stay() {
    var button = document.getElementById("stay-signed-in");
    button.disabled = true;
    var data = new FormData();
    var csrf = document.querySelector("input[name=csrf_token]");
    data.append("csrf_token", csrf ? csrf.value : "");
    fetch(body.getAttribute("data-keep-alive-url"), {
      method: "POST", body: data, credentials: "same-origin", redirect: "manual",
      headers: { "Accept": "application/json" }
    }).then(function (answer) {
      button.disabled = false;
      if (answer.ok) {
        loaded = Date.now();
        markSeen(loaded);
        if (banner) { banner.hidden = true; }
      } else {
        endSession();  // redirected to login: it had already ended
      }
    }).catch(function () {
      button.disabled = false;
      document.getElementById("session-warning-text").textContent =
        "The server could not be reached to keep your session. Check the network and try again.";
    });
  }

  function tick() {
    if (ended) return;
    var left = total * 1000 - (Date.now() - lastSeen());
    if (left <= 0) {
      endSession();
    } else if (left <= warnAt * 1000) {
      showBanner().hidden = false;
      document.getElementById("stay-signed-in").style.display = "";
      document.getElementById("session-warning-text").textContent =
        "Your session ends in " + inWords(left) + " without activity. What you typed is not recorded until you sign.";
    } else if (banner) {
      banner.hidden = true;
    }
  }
  setInterval(tick, 1000);
  document.addEventListener("visibilitychange", tick);
})();
