// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";

  // Find: narrow the department list to the chosen clinic and the doctor list to the chosen
  // department (options carry data-parent). The choice is still checked on the server.
  function narrow(parent, child) {
    if (!parent || !child) return;
    function apply() {
      var wanted = parent.value;
      Array.prototype.forEach.call(child.options, function (option) {
        if (!option.value) return;
        var parents = (option.getAttribute("data-parent") || "").split(" ");
        var fits = !wanted || parents.indexOf(wanted) !== -1;
        option.hidden = !fits;
        option.disabled = !fits;
        if (!fits && option.selected) child.value = "";
      });
      child.dispatchEvent(new Event("narrowed"));
    }
    parent.addEventListener("change", apply);
    apply();
  }

  document.querySelectorAll("form[data-find-form]").forEach(function (form) {
    var clinic = form.querySelector("select[name=clinic]");
    var department = form.querySelector("select[name=department]");
    var doctor = form.querySelector("select[name=doctor]");
    narrow(clinic, department);
    narrow(department, doctor);
    if (department && doctor) department.addEventListener("narrowed", function () {
      department.dispatchEvent(new Event("change"));
    });
  });

  // The day strip scrolls sideways on a phone: bring the chosen day into view (without moving the page).
  document.querySelectorAll(".day-strip").forEach(function (strip) {
    var current = strip.querySelector("[aria-current]");
    if (current && current.offsetLeft + current.offsetWidth > strip.clientWidth) {
      strip.scrollLeft = current.offsetLeft - (strip.clientWidth - current.offsetWidth) / 2;
    }
  });

  // Write forms: one submit per click. The server already books once per form token; this only
  // spares a second request and shows that the first one is under way.
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitted) {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = "true";
      var button = form.querySelector("button[type=submit]");
      if (button) button.setAttribute("aria-busy", "true");
    });
  });
  // Coming back with the Back button restores the page as it was: make its forms usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      delete form.dataset.submitted;
      var button = form.querySelector("button[type=submit]");
      if (button) button.removeAttribute("aria-busy");
    });
  });
})();
