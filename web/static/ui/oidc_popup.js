// The re-authentication window: tell the sign dialog that opened it what happened (same
// origin only), then close. The grant is good for one signature, by this person, from
// this browser session, for a few minutes.
(function () {
  "use strict";
  var result = document.getElementById("oidc-result");
  if (!result || !window.opener || window.opener.closed) return;
  window.opener.postMessage({
    type: "batchline-oidc-signing",
    grant: result.getAttribute("data-grant") || "",
    error: result.getAttribute("data-error") || "",
    code: result.getAttribute("data-code") || ""
  }, window.location.origin);
  window.close();
})();
