/* intake dashboard: keyboard flow of the paper desk. No inline scripts anywhere (CSP script-src 'self'). */
(function () {
  "use strict";
  function radios() {
    return Array.prototype.slice.call(document.querySelectorAll("#suggestions input[type=radio]"));
  }
  function move(step) {
    var list = radios();
    if (!list.length) { return; }
    var i = list.findIndex(function (r) { return r.checked; });
    i = Math.max(0, Math.min(list.length - 1, i + step));
    list[i].checked = true;
    list[i].closest("label").scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var q = document.getElementById("desk-q");
    if (!q) { return; }
    var form = q.form;
    var fetched = null;     // the text the suggestions on screen were made for
    var submitAfter = false;
    document.body.addEventListener("htmx:afterSettle", function (ev) {
      if (ev.detail && ev.detail.target && ev.detail.target.id === "suggestions") {
        fetched = (ev.detail.requestConfig && ev.detail.requestConfig.parameters && ev.detail.requestConfig.parameters.q) || q.value;
        if (submitAfter) { submitAfter = false; form.requestSubmit(); }
      }
    });
    q.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowDown") { ev.preventDefault(); move(1); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); move(-1); }
      else if (ev.key === "Enter") {
        // Enter saves; if the suggestions are not yet those of what was typed, fetch them first, then save
        // with the best one chosen.
        if (q.value.trim() && fetched !== q.value) {
          ev.preventDefault();
          submitAfter = true;
          window.htmx.trigger(q, "search");
        }
      }
    });
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { q.value = ""; document.getElementById("suggestions").innerHTML = ""; fetched = null; q.focus(); }
    });
  });
})();
