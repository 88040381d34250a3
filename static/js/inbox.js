// The inbox, live: the unread count in the navigation and, on the Messages page, new messages at the
// top of the list, pushed over ws/notifications/ (notifications.consumers). Progressive enhancement:
// without this file the count is right at each page load and the page lists what was there.
(function () {
  "use strict";

  var badge = document.querySelector("[data-unread-badge]");
  if (!badge || !window.WebSocket) return;

  function setCount(count) {
    document.querySelectorAll("[data-unread-count]").forEach(function (el) { el.textContent = String(count); });
    badge.hidden = count < 1;
    var summary = document.querySelector("[data-inbox-summary]");
    if (summary) summary.textContent = count > 0 ? count + " unread" : "All read";
    var readAll = document.querySelector("[data-inbox-read-all]");
    if (readAll) readAll.hidden = count < 1;
  }

  function addMessage(message) {
    var list = document.querySelector("[data-inbox-list]");
    var template = document.querySelector("[data-inbox-template]");
    if (!list || !template || list.querySelector('[data-message-id="' + message.id + '"]')) return;
    var item = template.content.firstElementChild.cloneNode(true);
    item.setAttribute("data-message-id", String(message.id));
    item.querySelector('[data-field="subject"]').textContent = message.subject || "Message";
    item.querySelector('[data-field="body"]').textContent = message.body || "";
    var time = item.querySelector('[data-field="time"]');
    time.textContent = "Just now";
    if (message.created_at) time.setAttribute("datetime", message.created_at);
    item.querySelector("form").setAttribute(
      "action", list.getAttribute("data-read-url").replace("/0/", "/" + message.id + "/")
    );
    list.insertBefore(item, list.firstChild);
    var empty = document.querySelector("[data-inbox-empty]");
    if (empty) empty.remove();
  }

  var base = badge.getAttribute("data-ws-base") ||
    (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
  var delay = 1000;

  function connect() {
    var socket = new WebSocket(base.replace(/\/$/, "") + "/ws/notifications/");
    socket.addEventListener("open", function () { delay = 1000; });
    socket.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "notification") {
        addMessage(frame);
        if (typeof frame.unread_count === "number") setCount(frame.unread_count);
      } else if (frame.type === "unread") {
        setCount(frame.unread_count);
      }
    });
    socket.addEventListener("close", function (event) {
      // 4401/4403: not signed in or no longer allowed; the next page load says why.
      if (event.code === 4401 || event.code === 4403) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }
  connect();
})();
