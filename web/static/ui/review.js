// QA's review page: the disposition dialog (which exception, accept or escalate) and the
// release / reject dialog. The server checks everything again and is the authority.
(function () {
  "use strict";

  function open(dialog) {
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    var first = dialog.querySelector("[name=signer_id]") || dialog.querySelector("textarea") || dialog.querySelector("[name=password]");
    if (first) first.focus();
  }
  function close(dialog) { if (dialog.close) dialog.close(); else dialog.removeAttribute("open"); }

  Array.prototype.forEach.call(document.querySelectorAll("dialog [data-close]"), function (button) {
    button.addEventListener("click", function () { close(button.closest("dialog")); });
  });

  var dispose = document.getElementById("dispose-dialog");
  function needsText(decision, needs, given) {
    if (decision === "escalate") return "One QA signature escalates it; the QMS is asked to open a deviation.";
    if (needs > 1) {
      return given > 0 ? "This is the second of two signatures: it must come from a QA person who has not signed it yet."
                       : "This exception needs two QA signatures by two different people: yours is the first.";
    }
    return "One QA signature accepts it.";
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-dispose]"), function (button) {
    button.addEventListener("click", function () {
      var form = document.getElementById("dispose-form");
      var decision = button.getAttribute("data-dispose");
      form.setAttribute("action", button.getAttribute("data-action"));
      document.getElementById("dispose-key").value = button.getAttribute("data-key");
      document.getElementById("dispose-summary").textContent = button.getAttribute("data-summary");
      document.getElementById("decision-" + decision).checked = true;
      var needs = parseInt(button.getAttribute("data-needs"), 10), given = parseInt(button.getAttribute("data-given"), 10);
      var say = function () {
        var chosen = form.querySelector("[name=decision]:checked").value;
        document.getElementById("dispose-needs").textContent = needsText(chosen, chosen === "accept" ? needs : 1, chosen === "accept" ? given : 0);
      };
      Array.prototype.forEach.call(form.querySelectorAll("[name=decision]"), function (r) { r.onchange = say; });
      say();
      var error = document.getElementById("dispose-error");
      if (error) error.remove();
      open(dispose);
    });
  });

  var decide = document.getElementById("decide-dialog");
  Array.prototype.forEach.call(document.querySelectorAll("[data-decide]"), function (button) {
    button.addEventListener("click", function () {
      var kind = button.getAttribute("data-decide");
      var form = document.getElementById("decide-form");
      var changed = decide.getAttribute("data-kind") !== kind;
      form.setAttribute("action", form.getAttribute("data-" + kind));
      decide.setAttribute("data-kind", kind);
      document.getElementById("decide-title").textContent = (kind === "reject" ? "Reject" : "Release") + " batch " + decide.getAttribute("data-batch");
      document.getElementById("decide-what").textContent = kind === "reject"
        ? "The batch is rejected: it will not be released. Give the reason."
        : "You release the batch record as reviewed: every step, value, signature, correction and exception decision.";
      document.getElementById("comment-label").textContent = kind === "reject" ? "Reason (required)" : "Comment (optional)";
      Array.prototype.forEach.call(decide.querySelectorAll(".decide-meaning"), function (el) {
        el.textContent = kind === "reject" ? "Rejected" : "Released";
      });
      var error = document.getElementById("decide-error");
      if (error && changed) error.remove();
      open(decide);
    });
  });

  // a double tap sends once (the server also dedupes by idempotency key)
  Array.prototype.forEach.call(document.querySelectorAll("dialog form"), function (form) {
    var sent = false;
    form.addEventListener("submit", function (event) {
      if (sent) { event.preventDefault(); return; }
      sent = true;
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; button.textContent = "Signing…"; }
    });
  });

  [dispose, decide].forEach(function (dialog) {
    if (dialog && dialog.hasAttribute("data-open")) open(dialog);
  });
})();
