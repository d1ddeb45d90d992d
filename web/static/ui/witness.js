// The sign dialog's witness: as soon as a witness user id is typed (before any password), ask the
// server whether that person may witness this step (another person, a witnessing role, the task's
// qualifications) and say why not, with Sign disabled. The submission is checked again anyway.
(function () {
  "use strict";
  var script = document.getElementById("witness-script");
  var input = document.getElementById("witness_id");
  var submit = document.getElementById("sign-submit");
  if (!script || !input || !submit) return;
  var why = document.createElement("p");
  why.id = "witness-why";
  why.className = "flash flash-error small";
  why.setAttribute("role", "alert");
  why.hidden = true;
  input.parentNode.appendChild(why);
  var asked = 0;

  function say(text) {
    why.textContent = text;
    why.hidden = !text;
    submit.disabled = !!text;
  }

  function check() {
    var typed = input.value.trim();
    var mine = ++asked;
    if (!typed) { say(""); return; }
    var data = new FormData();
    var csrf = document.querySelector("input[name=csrf_token]");
    data.append("csrf_token", csrf ? csrf.value : "");
    data.append("witness_id", typed);
    fetch(script.getAttribute("data-check-url"), {
      method: "POST", body: data, credentials: "same-origin", redirect: "manual",
      headers: { "Accept": "application/json" }
    }).then(function (answer) {
      return answer.ok ? answer.json() : { ok: true };  // no answer: the submission decides
    }).then(function (result) {
      if (mine === asked) say(result && result.ok === false ? String(result.why || "") : "");
    }).catch(function () { if (mine === asked) say(""); });
  }

  input.addEventListener("change", check);
  input.addEventListener("blur", check);
  input.addEventListener("input", function () { if (!why.hidden) say(""); });
})();
