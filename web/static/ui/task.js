// Task and correction pages: live limit hints while typing, file size checks, the sign
// dialog, and no double submit.
// Hints only help: the server checks every value again and is the authority.
(function () {
  "use strict";

  var NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

  function parseJSON(text) {
    try { return JSON.parse(text || "{}"); } catch (e) { return {}; }
  }

  function has(limits, name) {
    return Object.prototype.hasOwnProperty.call(limits, name);
  }

  // Limits are inclusive: a value equal to a limit is on the good side of it.
  function outside(value, limits, low, high) {
    return (has(limits, low) && value < parseFloat(limits[low])) ||
           (has(limits, high) && value > parseFloat(limits[high]));
  }

  function check(input) {
    var raw = input.value.trim();
    var limits = parseJSON(input.getAttribute("data-limits"));
    var text = parseJSON(input.getAttribute("data-limit-text"));
    var decimals = input.getAttribute("data-decimals");
    if (raw === "") return { level: "", text: "" };
    if (/^[+-]?\d*,\d+$/.test(raw)) return { level: "hard", text: "Use a point as the decimal separator (7.2, not 7,2)." };
    if (!NUMBER.test(raw)) return { level: "hard", text: "Not a number." };
    var places = raw.indexOf(".") >= 0 ? raw.split(".")[1].length : 0;
    if (decimals !== "" && places > parseInt(decimals, 10)) {
      return { level: "hard", text: "At most " + decimals + " decimal place" + (decimals === "1" ? "" : "s") + "." };
    }
    var value = parseFloat(raw);
    if (outside(value, limits, "hardMin", "hardMax")) {
      return { level: "hard", text: "Outside hard limits (allowed " + (text.hard || "range") + "): this value cannot be recorded." };
    }
    if (outside(value, limits, "actionLow", "actionHigh")) {
      return { level: "action", text: "Action: outside the action limits (" + (text.action || "") + "). It will be recorded and raise an action exception." };
    }
    if (outside(value, limits, "alertLow", "alertHigh")) {
      return { level: "alert", text: "Alert: outside the alert limits (" + (text.alert || "") + "). It will be recorded and raise an alert exception." };
    }
    if (Object.keys(limits).length) return { level: "ok", text: "Within limits." };
    return { level: "", text: "" };
  }

  function show(input) {
    var hint = document.getElementById(input.id + "-hint");
    var result = check(input);
    if (!hint) return result;
    hint.textContent = result.text;
    hint.className = "hint" + (result.level ? " hint-" + result.level : "");
    var field = input.closest(".field");
    if (field) {
      ["ok", "alert", "action", "hard"].forEach(function (level) {
        field.classList.toggle("level-" + level, result.level === level);
      });
    }
    return result;
  }

  var numbers = document.querySelectorAll("input.number[data-limits]");
  Array.prototype.forEach.call(numbers, function (input) {
    input.addEventListener("input", function () { show(input); });
    if (input.value) show(input);
  });

  // datetime-local values are local time: send the tablet's UTC offset with them
  function offset() {
    var minutes = -new Date().getTimezoneOffset();
    var sign = minutes >= 0 ? "+" : "-";
    minutes = Math.abs(minutes);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return sign + pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
  }
  Array.prototype.forEach.call(document.querySelectorAll("input.tz-offset"), function (el) { el.value = offset(); });

  // attachments: say at once when a file is too large to be sent (the server refuses it anyway)
  var files = document.querySelectorAll("input[type=file][data-max-bytes]");
  function tooLarge(input) {
    var max = parseInt(input.getAttribute("data-max-bytes"), 10);
    var hint = document.getElementById(input.id + "-hint");
    var file = input.files && input.files[0];
    var over = !!(file && max && file.size > max);
    if (hint) {
      hint.textContent = over ? "This file is too large (" + sizeText(file.size) + "; at most " + sizeText(max) +
        "). Choose a smaller one." : (file ? file.name + " (" + sizeText(file.size) + ") will be attached when you sign." : "");
      hint.className = "hint" + (over ? " hint-hard" : (file ? " hint-ok" : ""));
    }
    var field = input.closest(".field");
    if (field) field.classList.toggle("level-hard", over);
    return over;
  }
  function sizeText(bytes) {
    if (bytes < 1000) return bytes + " bytes";
    if (bytes < 1e6) return (bytes / 1e3).toFixed(1) + " kB";
    return (bytes / 1e6).toFixed(1) + " MB";
  }
  Array.prototype.forEach.call(files, function (input) {
    input.addEventListener("change", function () { tooLarge(input); });
  });

  var form = document.querySelector("form.signed-form");
  var dialog = document.getElementById("sign-dialog");
  var open = document.getElementById("open-sign");
  var cancel = document.getElementById("sign-cancel");
  if (!form || !dialog || !open) return;

  function openDialog() {
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    var first = dialog.querySelector("#signer_id") || dialog.querySelector("#password");
    if (first) first.focus();
  }

  open.addEventListener("click", function () {
    var bad = null;
    Array.prototype.forEach.call(numbers, function (input) {
      if (!bad && show(input).level === "hard") bad = input;
    });
    Array.prototype.forEach.call(files, function (input) {
      if (!bad && tooLarge(input)) bad = input;
    });
    if (bad) {
      // the server would refuse it; say so before asking for a password
      bad.focus();
      var hint = document.getElementById(bad.id + "-hint");
      if (hint) hint.classList.add("shake");
      return;
    }
    openDialog();
  });
  if (cancel) cancel.addEventListener("click", function () { dialog.close ? dialog.close() : dialog.removeAttribute("open"); });

  // Enter in a field outside the dialog must not submit an unsigned form
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || dialog.contains(event.target) || event.target.tagName === "TEXTAREA") return;
    if (event.target.tagName === "BUTTON") return;
    event.preventDefault();
  });

  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }  // a double tap sends once (the server also dedupes)
    sent = true;
    var button = document.getElementById("sign-submit");
    if (button) { button.disabled = true; button.textContent = "Recording…"; }
  });

  if (dialog.hasAttribute("data-open")) openDialog();
  else {
    var error = document.querySelector(".field.has-error input, .field.has-error select, .field.has-error textarea");
    if (error) error.focus();
  }
})();
