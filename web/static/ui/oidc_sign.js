// The sign dialog of a person who signs in with the organisation's OIDC provider: the
// "Confirm and sign" button opens the provider in a small window (prompt=login,
// max_age=0); when it reports a one-time grant, the form is submitted with it, so what
// the operator typed is never lost. An error is shown in the dialog.
(function () {
  "use strict";
  var button = document.getElementById("oidc-confirm");
  var field = document.getElementById("oidc_grant");
  if (!button || !field) return;
  var form = field.form;
  var status = document.getElementById("oidc-status");
  var popup = null;

  function say(text, isError) {
    if (!status) return;
    status.textContent = text;
    status.className = isError ? "flash flash-error" : "muted small";
  }

  button.addEventListener("click", function () {
    var width = 520, height = 640;
    var left = window.screenX + Math.max(0, (window.outerWidth - width) / 2);
    var top = window.screenY + Math.max(0, (window.outerHeight - height) / 2);
    popup = window.open(button.getAttribute("data-url"), "batchline-oidc-signing",
      "popup=yes,width=" + width + ",height=" + height + ",left=" + left + ",top=" + top);
    if (!popup) {
      say("Your browser blocked the sign-in window. Allow pop-up windows for this site and press the button again.", true);
      return;
    }
    say("Confirm your identity in the sign-in window…", false);
  });

  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin) return;
    var data = event.data || {};
    if (data.type !== "batchline-oidc-signing") return;
    if (data.grant) {
      field.value = data.grant;
      say("Identity confirmed. Recording your signature…", false);
      if (typeof form.requestSubmit === "function") form.requestSubmit();
      else form.submit();
    } else {
      say(data.error || "Your identity was not confirmed. Try again.", true);
    }
  });
})();
