/*
 * The consultation record's one form (templates/consultations/panel.html, [data-consultation-record]).
 *
 * The form works without this script (its buttons are plain posts). Here we add:
 * - Autosave: 1.5 s after typing stops, and when a field loses focus, the record (not the medication line
 *   being typed) is posted to the form's action as JSON-answered draft save, with the version the page
 *   holds. The status line (role=status, polite) says "Saving…", "Saved at HH:MM" or "Not saved: why".
 * - Conflicts: a 409 version_conflict (another tab or person saved since) is never overwritten: the
 *   notice says so and offers to load the latest version. The doctor's queue socket (queue.js passes its
 *   {"type": "consultation"} messages on as an "opd:consultation" event) tells a page of a newer version:
 *   with no unsaved edits the panel reloads; with some, the same notice shows.
 * - Complete: asks in a dialog first (Cancel first, so Enter or Escape never completes by accident), then
 *   sends the whole form, so what was typed is what is completed (the server saves and completes in one
 *   step, or refuses naming what is missing).
 * - Leaving the page with unsaved edits (or a medication line typed but not added) asks first.
 * Buttons post with fetch and the answer (the panel's fragment) replaces the panel, on the dashboard too.
 */
(function () {
  "use strict";

  var DELAY = 1500;
  var states = new WeakMap();
  var dialog = null;
  var pendingForm = null;
  var pendingButton = null;

  function state(form) {
    var current = states.get(form);
    if (!current) {
      current = {
        dirty: form.hasAttribute("data-unsaved"),
        edits: 0,
        saving: false,
        again: false,
        timer: null,
        pushed: 0,
        conflict: false,
        inflight: null,
      };
      states.set(form, current);
    }
    return current;
  }

  function recordFormOf(element) {
    return element && element.closest ? element.closest("[data-consultation-record]") : null;
  }

  function isLineField(element) {
    return !!(element.name && element.name.indexOf("line-") === 0);
  }

  function version(form) {
    return parseInt(form.getAttribute("data-version") || "0", 10);
  }

  function setVersion(form, value) {
    form.setAttribute("data-version", String(value));
    var input = form.querySelector("input[name=version]");
    if (input) input.value = String(value);
  }

  function say(form, text) {
    var status = form.querySelector("[data-record-status]");
    if (status) status.textContent = text;
  }

  function showConflict(form, text) {
    var current = state(form);
    current.conflict = true;
    clearTimeout(current.timer);
    var notice = form.querySelector("[data-record-conflict]");
    if (!notice) return;
    if (text) notice.querySelector("[data-record-conflict-text]").textContent = text;
    notice.hidden = false;
    notice.setAttribute("role", "alert");
    say(form, "Not saved: another tab or person changed this consultation.");
  }

  function lineStarted(form) {
    var started = false;
    form.querySelectorAll("[name^='line-']").forEach(function (field) {
      if (field.name !== "line-route" && field.type !== "hidden" && String(field.value).trim()) started = true;
    });
    return started;
  }

  function recordData(form) {
    var data = new FormData(form);
    var names = [];
    data.forEach(function (_value, name) {
      if (name.indexOf("line-") === 0) names.push(name);
    });
    names.forEach(function (name) {
      data.delete(name);
    });
    data.set("version", String(version(form)));
    return data;
  }

  function clock() {
    var now = new Date();
    return ("0" + now.getHours()).slice(-2) + ":" + ("0" + now.getMinutes()).slice(-2);
  }

  function save(form) {
    var current = state(form);
    clearTimeout(current.timer);
    if (!document.contains(form) || !current.dirty || current.conflict) return;
    if (current.saving) {
      current.again = true;
      return;
    }
    current.saving = true;
    var edits = current.edits;
    say(form, "Saving…");
    current.inflight = fetch(form.getAttribute("action"), {
      method: "POST",
      body: recordData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        return response.json().then(
          function (body) {
            return { status: response.status, body: body };
          },
          function () {
            return { status: response.status, body: {} };
          }
        );
      })
      .then(function (answer) {
        if (answer.status === 200) {
          setVersion(form, answer.body.version);
          if (current.edits === edits) current.dirty = false;
          say(form, current.dirty ? "Unsaved changes…" : "Saved at " + (answer.body.saved_at || clock()) + ".");
          if (current.pushed > answer.body.version) {
            showConflict(form); // someone else saved after us meanwhile
          }
        } else if (answer.status === 409 && answer.body.error && answer.body.error.code === "version_conflict") {
          showConflict(form, answer.body.error.message);
        } else {
          var error = (answer.body && answer.body.error) || {};
          say(form, "Not saved: " + (error.message || "the server answered " + answer.status) + ".");
        }
      })
      .catch(function () {
        say(form, "Not saved: no connection. Retrying…");
        current.timer = setTimeout(function () {
          save(form);
        }, 5000);
      })
      .then(function () {
        current.saving = false;
        if (current.again) {
          current.again = false;
          save(form);
        }
      });
  }

  function edited(event) {
    var form = recordFormOf(event.target);
    if (!form || !event.target.name || event.target.name === "csrfmiddlewaretoken") return;
    if (isLineField(event.target)) return; // a line is added with its own button
    var current = state(form);
    current.dirty = true;
    current.edits += 1;
    if (current.conflict) return;
    say(form, "Unsaved changes…");
    clearTimeout(current.timer);
    current.timer = setTimeout(function () {
      save(form);
    }, DELAY);
  }

  document.addEventListener("input", edited);
  document.addEventListener("change", edited);
  document.addEventListener("focusout", function (event) {
    var form = recordFormOf(event.target);
    if (form && !isLineField(event.target) && state(form).dirty) save(form);
  });

  // Replace the panel with the server's fragment (a button's answer, or the latest version).
  function swapPanel(form, html) {
    var panel = document.getElementById(form.getAttribute("data-panel"));
    if (!panel) return;
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    var fresh = holder.querySelector("#" + form.getAttribute("data-panel"));
    if (!fresh) return;
    states.delete(form);
    panel.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    var alert = fresh.querySelector("[role=alert]");
    var next = fresh.querySelector("[data-consultation-record]");
    if (alert && alert.focus) {
      alert.setAttribute("tabindex", "-1");
      alert.focus();
    } else if (next) {
      say(next, "Loaded version " + version(next) + ".");
    }
  }

  function loadLatest(form) {
    fetch(form.getAttribute("data-panel-url"), {
      credentials: "same-origin",
      headers: { "HX-Request": "true" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        swapPanel(form, html);
      })
      .catch(function () {
        say(form, "Could not load the latest version: reload the page.");
      });
  }

  function post(form, button) {
    var current = state(form);
    clearTimeout(current.timer);
    // The post carries every field, so no autosave may follow the one under way: a second autosave
    // started as that one ends would race this post with the same version, and one of the two would
    // come back 409 version_conflict although nobody else wrote.
    current.again = false;
    // An autosave under way first: the button's post then carries the version it made.
    var before = current.inflight || Promise.resolve();
    current.saving = true;
    say(form, "Saving…");
    before
      .then(function () {
        var data = new FormData(form);
        data.set("version", String(version(form)));
        return fetch(button.getAttribute("formaction") || form.getAttribute("action"), {
          method: "POST",
          body: data,
          credentials: "same-origin",
          headers: { "HX-Request": "true" },
        });
      })
      .then(function (response) {
        return response.text();
      })
      .then(function (html) {
        current.saving = false;
        swapPanel(form, html);
      })
      .catch(function () {
        current.saving = false;
        say(form, "Not saved: no connection. Try again.");
      });
  }

  function buildDialog() {
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "complete-dialog-title");
    dialog.setAttribute("aria-describedby", "complete-dialog-detail");
    var article = document.createElement("article");
    var title = document.createElement("h2");
    title.id = "complete-dialog-title";
    var detail = document.createElement("p");
    detail.id = "complete-dialog-detail";
    detail.textContent =
      "What is in the form now is saved with it. The record becomes read-only (corrections go in an " +
      "addendum) and the appointment is completed.";
    var footer = document.createElement("footer");
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary outline";
    cancel.textContent = "Cancel";
    var ok = document.createElement("button");
    ok.type = "button";
    ok.textContent = "Complete";
    ok.setAttribute("data-complete-ok", "");
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
      var form = pendingForm;
      var button = pendingButton;
      pendingForm = null;
      dialog.close();
      if (form && button) post(form, button);
    });
    dialog.addEventListener("close", function () {
      if (pendingButton && document.contains(pendingButton)) pendingButton.focus();
      pendingForm = null;
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-consultation-record")) return;
    var button = event.submitter;
    if (!button) return; // an old browser: the plain post
    event.preventDefault();
    if (state(form).conflict && !button.hasAttribute("data-record-complete")) {
      showConflict(form);
      return;
    }
    if (button.hasAttribute("data-record-complete") && typeof HTMLDialogElement !== "undefined") {
      if (!dialog) buildDialog();
      pendingForm = form;
      pendingButton = button;
      dialog.querySelector("#complete-dialog-title").textContent =
        "Complete the consultation of " + (form.getAttribute("data-patient") || "this patient") + "?";
      dialog.showModal();
      dialog.querySelector("button").focus();
      return;
    }
    post(form, button);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-record-reload]");
    if (!button) return;
    var form = recordFormOf(button);
    if (form) loadLatest(form);
  });

  // A newer version saved elsewhere (queue.js passes the doctor's socket's messages on).
  document.addEventListener("opd:consultation", function (event) {
    var message = event.detail || {};
    var form = document.querySelector(
      '[data-consultation-record][data-consultation="' + String(message.consultation_id) + '"]'
    );
    if (!form || !(message.version > version(form))) return;
    var current = state(form);
    current.pushed = Math.max(current.pushed, message.version);
    if (current.saving) return; // our own save may be that version: its answer decides
    if (current.dirty || lineStarted(form)) {
      showConflict(form);
    } else {
      loadLatest(form);
    }
  });

  window.addEventListener("beforeunload", function (event) {
    var unsaved = false;
    document.querySelectorAll("[data-consultation-record]").forEach(function (form) {
      var current = state(form);
      if (current.dirty || current.saving || lineStarted(form)) unsaved = true;
    });
    if (unsaved) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
