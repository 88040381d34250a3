/*
 * Live queue pages (doctor's dashboard, waiting-room display).
 *
 * The page is server-rendered and works without this script. Here we open the queue's websocket
 * (data-ws-path on the [data-queue-live] element; data-ws-base or this origin), and when the queue
 * changes we re-fetch the page's fragments ([data-fragment][data-url]) and swap them in.
 *
 * Versions: the page is rendered at data-version. The server sends a snapshot on connect, then one
 * event per change carrying version + 1. A snapshot with another version, or an event in order,
 * refreshes the fragments; an event that skips a version means something was missed, so we ask for a
 * fresh snapshot ({"type": "resync"}); an older one is ignored. A dropped connection is reopened with
 * growing delays (1 s, 2 s, 4 s ... 30 s); close codes 4401/4403/4404 mean "do not retry". Meanwhile the
 * page says "Live updates paused" (a dropped network, a server restarting, or the server's answer
 * {"type": "paused"} then close 1013 when Redis is away); the next snapshot brings the page up to date.
 *
 * Alerts ({"type": "alert"}: NEWS2 rose to an urgent or emergency response, or a waiting patient's
 * observations are due) are shown in [data-alerts] as role="alert" boxes with a short beep made with the
 * Web Audio API (no sound file), unless this device muted them ([data-alert-mute], kept in localStorage).
 * Every snapshot carries the alerts that still hold (snapshot.alerts, same shape): shown unless already
 * on the page or dismissed here, so a page that reconnected around an alert still shows it.
 * A fragment is not swapped while the focus is inside it (a nurse typing vitals on the triage page): the
 * refresh waits until the focus leaves.
 */
/*
 * Confirmation of actions that are hard to take back (no-show, skip): forms marked data-confirm ask in
 * a modal dialog first. Without this script the server answers such a POST with a confirmation page
 * instead, so the dialog only saves a page load; on "yes" the form is sent with confirmed=1. The
 * dialog's first button is Cancel, so Enter or Escape never marks anyone by accident.
 * Also: "Undo" offers for no-shows ([data-undo-until]) are taken down when their time is up.
 */
(function () {
  "use strict";

  var dialog = null;
  var pending = null;
  var opener = null;

  function build() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
    dialog.setAttribute("aria-describedby", "confirm-dialog-detail");
    var article = document.createElement("article");
    var title = document.createElement("h2");
    title.id = "confirm-dialog-title";
    var detail = document.createElement("p");
    detail.id = "confirm-dialog-detail";
    var footer = document.createElement("footer");
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary outline";
    cancel.textContent = "Cancel";
    cancel.setAttribute("data-confirm-cancel", "");
    var ok = document.createElement("button");
    ok.type = "button";
    ok.className = "contrast";
    ok.setAttribute("data-confirm-ok", "");
    footer.appendChild(cancel);
    footer.appendChild(ok);
    article.appendChild(title);
    article.appendChild(detail);
    article.appendChild(footer);
    dialog.appendChild(article);
    document.body.appendChild(dialog);
    cancel.addEventListener("click", function () {
      dialog.close();
    });
    ok.addEventListener("click", function () {
      var form = pending;
      pending = null;
      dialog.close();
      if (!form) return;
      var flag = document.createElement("input");
      flag.type = "hidden";
      flag.name = "confirmed";
      flag.value = "1";
      form.appendChild(flag);
      form.submit();
    });
    dialog.addEventListener("close", function () {
      if (pending && opener && document.contains(opener)) opener.focus();
      pending = null;
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (typeof HTMLDialogElement === "undefined") return; // the server's confirmation page asks instead
    event.preventDefault();
    if (!dialog) build();
    pending = form;
    opener = form.querySelector("button[type=submit]");
    dialog.querySelector("#confirm-dialog-title").textContent = form.getAttribute("data-confirm");
    dialog.querySelector("#confirm-dialog-detail").textContent = form.getAttribute("data-confirm-detail") || "";
    dialog.querySelector("[data-confirm-ok]").textContent = form.getAttribute("data-confirm-button") || "Yes";
    dialog.showModal();
    dialog.querySelector("[data-confirm-cancel]").focus();
  });

  function expireUndo() {
    var now = Date.now();
    document.querySelectorAll("[data-undo-until]").forEach(function (item) {
      var until = Date.parse(item.getAttribute("data-undo-until"));
      if (!isNaN(until) && until < now) {
        var bar = item.closest(".undo-bar");
        item.remove();
        if (bar && !bar.querySelector("[data-undo-until]")) bar.remove();
      }
    });
  }
  setInterval(expireUndo, 5000);
})();

(function () {
  "use strict";

  var root = document.querySelector("[data-queue-live]");
  if (!root || !("WebSocket" in window)) return;

  var STOP = {
    4401: "Signed out: reload the page to sign in again",
    4403: "Not allowed to follow this queue",
    4404: "This queue does not exist",
  };
  var version = parseInt(root.getAttribute("data-version") || "0", 10);
  var socket = null;
  var attempts = 0;
  var retryTimer = null;
  var refreshTimer = null;
  var refreshing = false;
  var refreshAgain = false;
  var stopped = false;

  function socketUrl() {
    var base = root.getAttribute("data-ws-base");
    if (!base) base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
    return base.replace(/\/+$/, "") + root.getAttribute("data-ws-path");
  }

  function setStatus(state, text) {
    root.setAttribute("data-live-version", String(version));
    var status = document.querySelector("[data-live-status]");
    if (!status) return;
    status.setAttribute("data-state", state);
    var label = status.querySelector("[data-live-label]");
    if (label) label.textContent = text;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function connect() {
    clearTimeout(retryTimer);
    if (stopped) return;
    heard = true;
    setStatus("connecting", attempts ? "Reconnecting…" : "Connecting…");
    try {
      socket = new WebSocket(socketUrl());
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.onmessage = function (event) {
      heard = true;
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handle(message);
    };
    socket.onclose = function (event) {
      socket = null;
      if (STOP[event.code]) {
        stopped = true;
        setStatus("stopped", STOP[event.code]);
        return;
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    setStatus("offline", "Live updates paused: reconnecting…");
    var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.75 + Math.random() / 2);
    attempts += 1;
    retryTimer = setTimeout(connect, delay);
  }

  // Alerts -----------------------------------------------------------------------------------------
  var MUTE_KEY = "opd.alerts.muted";
  var muteButton = document.querySelector("[data-alert-mute]");
  var audio = null;

  function isMuted() {
    try {
      return window.localStorage.getItem(MUTE_KEY) === "1";
    } catch (error) {
      return false;
    }
  }

  function showMute() {
    if (!muteButton) return;
    var muted = isMuted();
    muteButton.setAttribute("aria-pressed", muted ? "true" : "false");
    muteButton.textContent = muted ? "Alert sound off" : "Alert sound on";
  }

  if (muteButton) {
    showMute();
    muteButton.addEventListener("click", function () {
      try {
        window.localStorage.setItem(MUTE_KEY, isMuted() ? "0" : "1");
      } catch (error) {
        return;
      }
      showMute();
    });
  }

  // Two short tones (higher for an emergency). Browsers may keep the audio context suspended until the
  // user has interacted with the page; the visual alert does not depend on it.
  function beep(level) {
    if (isMuted()) return;
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      audio = audio || new Context();
      if (audio.state === "suspended" && audio.resume) audio.resume();
      var pitch = level === "emergency" ? 988 : 784;
      [0, 0.3].forEach(function (offset) {
        var oscillator = audio.createOscillator();
        var gain = audio.createGain();
        oscillator.type = "sine";
        oscillator.frequency.value = pitch;
        gain.gain.setValueAtTime(0.2, audio.currentTime + offset);
        gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + offset + 0.25);
        oscillator.connect(gain);
        gain.connect(audio.destination);
        oscillator.start(audio.currentTime + offset);
        oscillator.stop(audio.currentTime + offset + 0.25);
      });
      root.setAttribute("data-beeps", String(parseInt(root.getAttribute("data-beeps") || "0", 10) + 1));
    } catch (error) {
      // No sound on this device: the alert is still shown.
    }
  }

  // Alerts dismissed on this page: a later snapshot that still carries one does not bring it back.
  var dismissedAlerts = {};

  function alertKey(message) {
    var alert = message.alert || {};
    return [message.appointment_id, alert.kind || "", alert.level || "", alert.news2_total].join(":");
  }

  function showAlert(message) {
    var region = document.querySelector("[data-alerts]");
    var alert = message.alert || {};
    if (!region) return;
    // The same alert delivered twice (the server delivers events at least once) is shown once.
    if (alert.id && region.querySelector('[data-alert-id="' + alert.id + '"]')) return;
    var key = alertKey(message);
    if (dismissedAlerts[key]) return;
    // A snapshot repeats the alerts that still hold (after a reconnect, one missed may be among them):
    // one already on the page is not shown twice.
    var shown = region.querySelectorAll("[data-alert-key]");
    for (var i = 0; i < shown.length; i++) {
      if (shown[i].getAttribute("data-alert-key") === key) return;
    }
    var box = document.createElement("div");
    if (alert.id) box.setAttribute("data-alert-id", alert.id);
    box.className = "queue-alert queue-alert-" + (alert.kind || "news2");
    box.setAttribute("role", "alert");
    box.setAttribute("data-alert-kind", alert.kind || "");
    box.setAttribute("data-alert-level", alert.level || "");
    box.setAttribute("data-alert-appointment", String(message.appointment_id));
    box.setAttribute("data-alert-key", key);
    var text = document.createElement("div");
    var head = document.createElement("p");
    var strong = document.createElement("strong");
    var who = "Token " + (alert.token_label || "#" + message.appointment_id) + (alert.patient ? " (" + alert.patient + ")" : "");
    strong.textContent =
      alert.kind === "rescore_due"
        ? who + ": observations due"
        : who + ": NEWS2 " + alert.news2_total + ", " + (alert.title || "").toLowerCase();
    head.appendChild(strong);
    var action = document.createElement("p");
    action.textContent = alert.action || "";
    text.appendChild(head);
    text.appendChild(action);
    var dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "secondary outline";
    dismiss.textContent = "Dismiss";
    dismiss.setAttribute("aria-label", "Dismiss the alert about " + who);
    dismiss.addEventListener("click", function () {
      dismissedAlerts[key] = true;
      box.remove();
    });
    box.appendChild(text);
    box.appendChild(dismiss);
    region.insertBefore(box, region.firstChild);
    beep(alert.level);
    // A reminder marks the row "re-score due": the list is re-read.
    if (alert.kind === "rescore_due") scheduleRefresh();
  }

  function handle(message) {
    if (message.type === "alert") {
      showAlert(message);
      return;
    }
    if (message.type === "consultation") {
      // A consultation was saved (ids and version only): the open record decides (consultation.js).
      document.dispatchEvent(new CustomEvent("opd:consultation", { detail: message }));
      return;
    }
    if (message.type === "snapshot") {
      attempts = 0;
      ((message.snapshot && message.snapshot.alerts) || []).forEach(showAlert);
      var changed = message.version !== version;
      version = message.version;
      setStatus("live", "Live");
      if (changed) scheduleRefresh();
    } else if (message.type === "event") {
      if (message.version <= version) return;
      if (message.version !== version + 1) {
        send({ type: "resync" });
        return;
      }
      version = message.version;
      setStatus("live", "Live");
      scheduleRefresh();
    }
  }

  // Several changes in a burst make one refresh.
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 120);
  }

  function fetchFragment(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }).then(
      function (response) {
        if (!response.ok || response.redirected) throw new Error("fragment " + response.status);
        return response.text();
      }
    );
  }

  function rowIds(element) {
    var ids = {};
    element.querySelectorAll("[data-appointment]").forEach(function (row) {
      ids[row.getAttribute("data-appointment")] = true;
    });
    return ids;
  }

  function swap(old, html) {
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    var fresh = holder.firstElementChild;
    if (!fresh) return null;
    // Rows that were not there before are highlighted for a moment.
    var before = rowIds(old);
    fresh.querySelectorAll("[data-appointment]").forEach(function (row) {
      if (!before[row.getAttribute("data-appointment")]) row.classList.add("is-new");
    });
    // Vitals forms a nurse had opened stay open.
    old.querySelectorAll("details[open][id]").forEach(function (details) {
      var again = fresh.querySelector("#" + CSS.escape(details.id));
      if (again) again.open = true;
    });
    old.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    return fresh;
  }

  function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    var board = root.querySelector('[data-fragment="board"]');
    var current = root.querySelector('[data-fragment="current"]');
    var focused = document.activeElement;
    if (board && focused && focused !== document.body && board.contains(focused)) {
      // Someone is working in the list (typing vitals): swap it once the focus has left.
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refresh, 1500);
      return;
    }
    refreshing = true;
    var work = board
      ? fetchFragment(board.getAttribute("data-url")).then(function (html) {
          var fresh = swap(board, html);
          var key = fresh && fresh.getAttribute("data-focus-key");
          // The patient with the doctor (and the consultation panel inside) is re-fetched only when
          // that patient changes, so notes being typed there are left alone.
          if (current && key !== null && key !== current.getAttribute("data-key")) {
            return fetchFragment(current.getAttribute("data-url")).then(function (more) {
              swap(current, more);
            });
          }
        })
      : Promise.resolve();
    work
      .then(function () {
        root.setAttribute("data-refreshed-version", String(version));
        if (socket && socket.readyState === WebSocket.OPEN) setStatus("live", "Live");
      })
      .catch(function () {
        setStatus("offline", "Could not refresh: retrying…");
        refreshAgain = true;
      })
      .then(function () {
        refreshing = false;
        if (refreshAgain) {
          refreshAgain = false;
          setTimeout(refresh, 2000);
        }
      });
  }

  // The display's clock, in the clinic's time zone.
  var clock = document.querySelector("[data-clock]");
  if (clock && window.Intl) {
    var format = new Intl.DateTimeFormat("en-GB", {
      hour: "2-digit",
      minute: "2-digit",
      timeZone: clock.getAttribute("data-time-zone") || undefined,
    });
    var tick = function () {
      clock.textContent = format.format(new Date());
    };
    tick();
    setInterval(tick, 15000);
  }

  // A connection can die without a close (a laptop leaves the Wi-Fi, a proxy drops it): every 15 s the
  // page pings, and a socket that has not answered the previous ping (nor sent anything) is closed,
  // which pauses live updates and reconnects. The browser saying it went offline does the same at once.
  var HEARTBEAT_MS = 15000;
  var heard = true;

  // Let go of a socket that may never fire its close event (the close handshake cannot get through).
  function drop() {
    var old = socket;
    if (!old || stopped) return;
    socket = null;
    old.onclose = null;
    old.onmessage = null;
    try {
      old.close();
    } catch (error) {
      // Already closing.
    }
    scheduleReconnect();
  }

  setInterval(function () {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (!heard) {
      drop();
      return;
    }
    heard = false;
    send({ type: "ping" });
  }, HEARTBEAT_MS);

  window.addEventListener("offline", drop);

  window.addEventListener("online", function () {
    if (!socket && !stopped) {
      attempts = 0;
      connect();
    }
  });
  connect();
})();
