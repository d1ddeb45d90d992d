// The sign dialogs of a person who signs in with the organisation's OIDC provider: a
// "Confirm identity and sign" button opens the provider in a small window (prompt=login,
// max_age=0); when that window reports a one-time grant, the button's own form is
// submitted with it, so what the person typed is never lost. An error is shown beside
// the button. One page may hold several such forms (the review page).
(function () {
  "use strict";
  if (window.batchlineOidcSign) return;  // the script is included once per dialog
  window.batchlineOidcSign = true;
  var active = null;  // the button whose window is open

  function parts(button) {
    var form = button.form;
    return {
      form: form,
      field: form && form.querySelector("input[name=oidc_grant]"),
      status: form && form.querySelector(".oidc-status")
    };
  }

  function say(button, text, isError) {
    var status = parts(button).status;
    if (!status) return;
    status.textContent = text;
    status.className = (isError ? "flash flash-error" : "muted small") + " oidc-status";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.oidc-confirm") : null;
    if (!button || !parts(button).field) return;
    var width = 520, height = 640;
    var left = window.screenX + Math.max(0, (window.outerWidth - width) / 2);
    var top = window.screenY + Math.max(0, (window.outerHeight - height) / 2);
    var popup = window.open(button.getAttribute("data-url"), "batchline-oidc-signing",
      "popup=yes,width=" + width + ",height=" + height + ",left=" + left + ",top=" + top);
    if (!popup) {
      say(button, "Your browser blocked the sign-in window. Allow pop-up windows for this site and press the button again.", true);
      return;
    }
    active = button;
    say(button, "Confirm your identity in the sign-in window…", false);
  });

  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin || !active) return;
    var data = event.data || {};
    if (data.type !== "batchline-oidc-signing") return;
    var p = parts(active);
    if (data.grant) {
      p.field.value = data.grant;
      say(active, "Identity confirmed. Recording your signature…", false);
      if (typeof p.form.requestSubmit === "function") p.form.requestSubmit();
      else p.form.submit();
    } else {
      say(active, data.error || "Your identity was not confirmed. Try again.", true);
    }
    active = null;
  });
})();
