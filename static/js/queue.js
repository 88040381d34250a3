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
 * growing delays (1 s, 2 s, 4 s ... 30 s); close codes 4401/4403/4404 mean "do not retry".
 */
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
    setStatus("connecting", attempts ? "Reconnecting…" : "Connecting…");
    try {
      socket = new WebSocket(socketUrl());
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.onmessage = function (event) {
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
    setStatus("offline", "Offline: reconnecting…");
    var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.75 + Math.random() / 2);
    attempts += 1;
    retryTimer = setTimeout(connect, delay);
  }

  function handle(message) {
    if (message.type === "snapshot") {
      attempts = 0;
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
    old.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    return fresh;
  }

  function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    var board = root.querySelector('[data-fragment="board"]');
    var current = root.querySelector('[data-fragment="current"]');
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

  window.addEventListener("online", function () {
    if (!socket && !stopped) {
      attempts = 0;
      connect();
    }
  });
  connect();
})();
