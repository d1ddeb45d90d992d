// Task page: a scanned lot or equipment id is checked as its field is left, before the
// password (the same checks the step makes; the step checks again when it is signed).
// The answer appears under the field and is read out (aria-live); a failed check never
// blocks signing: the server is the authority either way.
(function () {
  "use strict";
  var form = document.getElementById("task-form");
  if (!form) return;
  var url = form.getAttribute("action") + "/scan-check";
  var token = form.querySelector("input[name=csrf_token]");

  function say(input, state, text) {
    var out = document.getElementById(input.id + "-scan");
    if (!out) return;
    out.textContent = text;
    out.className = "scan-check" + (state ? " scan-" + state : "");
    input.setAttribute("aria-invalid", state === "refused" ? "true" : "false");
    var field = input.closest(".field");
    if (field) field.classList.toggle("has-error", state === "refused");
  }

  function check(input) {
    var value = input.value.trim();
    if (value === "") { say(input, "", ""); return; }
    if (input.getAttribute("data-checked") === value) return;
    input.setAttribute("data-checked", value);
    say(input, "checking", "Checking " + value + "…");
    var body = new URLSearchParams();
    body.set("csrf_token", token ? token.value : "");
    body.set("field", input.name);
    body.set("value", value);
    fetch(url, { method: "POST", body: body, credentials: "same-origin", redirect: "manual",
                 headers: { "Accept": "application/json" } })
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") < 0) throw new Error("not json");
        return r.json();
      })
      .then(function (answer) {
        if (input.value.trim() !== value) return; // changed meanwhile: its own check follows
        say(input, answer.ok ? "ok" : "refused", (answer.ok ? "✓ " : "") + answer.message);
      })
      .catch(function () {
        input.removeAttribute("data-checked");
        say(input, "", "Could not check " + value + " now; it is checked when you sign.");
      });
  }

  Array.prototype.forEach.call(form.querySelectorAll("input[data-scan]"), function (input) {
    input.addEventListener("blur", function () { check(input); });
    input.addEventListener("change", function () { check(input); });
    input.addEventListener("keydown", function (e) {
      // most scanners end with Enter: check instead of submitting the form
      if (e.key === "Enter") { e.preventDefault(); check(input); }
    });
  });
})();
