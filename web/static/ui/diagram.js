// Batch page: the recipe's BPMN in the bpmn-js viewer, with done / current / pending
// elements marked. Files without diagram information are listed, not drawn.
(function () {
  "use strict";
  var canvasEl = document.getElementById("diagram-canvas");
  var status = document.getElementById("diagram-status");
  var tabs = document.getElementById("diagram-tabs");
  if (!canvasEl) return;

  function say(text) { if (status) status.textContent = text; }

  if (typeof window.BpmnJS !== "function") {
    say("The diagram viewer is not installed on this server (run: cd web && npm ci).");
    return;
  }

  var viewer = new window.BpmnJS({ container: canvasEl });
  var data = null;

  function mark(done, current) {
    var registry = viewer.get("elementRegistry");
    var canvas = viewer.get("canvas");
    var counts = { done: 0, current: 0, pending: 0 };
    registry.forEach(function (element) {
      var bo = element.businessObject;
      if (!bo || element.type === "label" || !bo.$instanceOf || !bo.$instanceOf("bpmn:FlowNode")) return;
      var state = current.has(element.id) ? "current" : done.has(element.id) ? "done" : "pending";
      canvas.addMarker(element.id, "bl-" + state);
      counts[state] += 1;
    });
    return counts;
  }

  // the box takes the diagram's shape: a long, flat process gets a low box, not a speck
  function fitHeight() {
    var inner = viewer.get("canvas").viewbox().inner;
    if (!inner || !inner.width) return;
    var width = canvasEl.clientWidth || 800;
    var wanted = Math.round((inner.height + 80) * Math.min(1, width / (inner.width + 80)));
    canvasEl.style.height = Math.max(200, Math.min(560, wanted)) + "px";
  }

  function fit() {
    fitHeight();
    viewer.get("canvas").resized();
    viewer.get("canvas").zoom("fit-viewport", "auto");
  }

  function show(file) {
    viewer.importXML(file.xml).then(function () {
      var counts = mark(new Set(data.done), new Set(data.current));
      fit();
      canvasEl.setAttribute("data-loaded", file.name);
      say((file.label || file.name) + ": " + counts.done + " done, " + counts.current + " current, " + counts.pending + " pending.");
    }).catch(function (err) {
      say("This diagram cannot be shown: " + (err && err.message ? err.message : err));
    });
  }

  fetch(canvasEl.getAttribute("data-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("the server answered " + response.status);
      return response.json();
    })
    .then(function (json) {
      data = json;
      var drawable = json.files.filter(function (f) { return f.drawable; });
      if (!drawable.length) { say("The recipe's BPMN files have no diagram layout to show."); return; }
      if (drawable.length > 1 && tabs) {
        tabs.hidden = false;
        drawable.forEach(function (file, i) {
          var button = document.createElement("button");
          button.type = "button";
          button.className = "chip" + (i === 0 ? " active" : "");
          button.textContent = file.label || file.name;
          button.addEventListener("click", function () {
            Array.prototype.forEach.call(tabs.children, function (b) { b.classList.remove("active"); });
            button.classList.add("active");
            show(file);
          });
          tabs.appendChild(button);
        });
      }
      show(drawable[0]);
    })
    .catch(function (err) { say("The diagram could not be loaded: " + err.message); });

  window.addEventListener("resize", function () {
    if (canvasEl.getAttribute("data-loaded")) fit();
  });

  // zoom buttons, and drag (finger or mouse) to move around a zoomed diagram
  Array.prototype.forEach.call(document.querySelectorAll("[data-zoom]"), function (button) {
    button.addEventListener("click", function () {
      var canvas = viewer.get("canvas");
      var how = button.getAttribute("data-zoom");
      if (how === "fit") { fit(); return; }
      canvas.zoom(canvas.zoom() * (how === "in" ? 1.25 : 0.8), "auto");
    });
  });
  var last = null;
  canvasEl.addEventListener("pointerdown", function (event) {
    last = { x: event.clientX, y: event.clientY };
    canvasEl.setPointerCapture(event.pointerId);
  });
  canvasEl.addEventListener("pointermove", function (event) {
    if (!last) return;
    viewer.get("canvas").scroll({ dx: event.clientX - last.x, dy: event.clientY - last.y });
    last = { x: event.clientX, y: event.clientY };
  });
  ["pointerup", "pointercancel"].forEach(function (name) {
    canvasEl.addEventListener(name, function () { last = null; });
  });
})();
