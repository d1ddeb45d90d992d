// The recipe editor page: bpmn-js Modeler + properties panel (with the Batchline group)
// on top, the form-js editor for the selected user task's form below. Save posts the
// diagram and forms to /recipes/save (a new draft version); the server answers element
// by element and each failing element gets a red marker and a line in the problem list.
import BpmnModeler from "bpmn-js/lib/Modeler";
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from "bpmn-js-properties-panel";
import { FormEditor } from "@bpmn-io/form-js-editor";
import spiffModdle from "./spiffworkflow.json";
import BatchlinePropertiesProvider from "./bpmn-properties.js";
import BatchlineFormProperties from "./form-properties.js";
import { getProperty, setProperty } from "./spiff.js";

const $ = (id) => document.getElementById(id);
const root = $("recipe-editor");
const data = JSON.parse($("recipe-data").textContent);
const csrf = root.getAttribute("data-csrf");
let current = data.recipe; // the version this page last saved or opened
let problems = [];

function newDiagram() {
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="Definitions_new" targetNamespace="https://batchline.org/bpmn/recipes" exporter="Batchline recipe editor" exporterVersion="1.0">
  <bpmn:process id="new_recipe" name="" isExecutable="true">
    <bpmn:startEvent id="start" name="Start"><bpmn:outgoing>Flow_start</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="first_step" name="First step">
      <bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="formKey" value="first_step_form" /></spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>Flow_start</bpmn:incoming><bpmn:outgoing>Flow_end</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end" name="Done"><bpmn:incoming>Flow_end</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_start" sourceRef="start" targetRef="first_step" />
    <bpmn:sequenceFlow id="Flow_end" sourceRef="first_step" targetRef="end" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="Diagram_new"><bpmndi:BPMNPlane id="Plane_new" bpmnElement="new_recipe">
    <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="152" y="102" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="first_step_di" bpmnElement="first_step"><dc:Bounds x="250" y="80" width="100" height="80" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="582" y="102" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNEdge id="Flow_start_di" bpmnElement="Flow_start"><di:waypoint x="188" y="120" /><di:waypoint x="250" y="120" /></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="Flow_end_di" bpmnElement="Flow_end"><di:waypoint x="350" y="120" /><di:waypoint x="582" y="120" /></bpmndi:BPMNEdge>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>`;
}

function emptyForm(id) {
  return { type: "default", id, schemaVersion: 16, exporter: { name: "Batchline recipe editor", version: "1.0" }, components: [] };
}

const forms = JSON.parse(JSON.stringify(data.forms || {}));
if (data.mode === "new") forms.first_step_form = emptyForm("first_step_form");

// --- messages ------------------------------------------------------------------------
function say(text, kind) {
  const box = $("editor-message");
  box.textContent = text || "";
  box.className = "editor-message" + (kind ? " flash flash-" + kind : "");
}

// --- the modeler ---------------------------------------------------------------------
const modeler = new BpmnModeler({
  container: $("bpmn-canvas"),
  propertiesPanel: { parent: $("bpmn-properties"), layout: { groups: { general: { open: true }, batchline: { open: true } } } },
  additionalModules: [
    BpmnPropertiesPanelModule,
    BpmnPropertiesProviderModule,
    { __init__: ["batchlineProperties"], batchlineProperties: ["type", BatchlinePropertiesProvider] },
  ],
  moddleExtensions: { spiffworkflow: spiffModdle },
  batchline: { connectors: data.connectors || [], templates: data.templates || [] },
});
const canvas = modeler.get("canvas");
const registry = modeler.get("elementRegistry");

function processBo() {
  const rootEl = canvas.getRootElement();
  return rootEl && rootEl.businessObject;
}

// recipe name and id fields in the bar edit the process itself
function bindHeader() {
  const bo = processBo();
  const name = $("recipe-name");
  const id = $("recipe-id");
  name.value = (bo && bo.name) || "";
  id.value = (bo && bo.id) || "";
  name.oninput = () => modeler.get("modeling").updateProperties(canvas.getRootElement(), { name: name.value });
  id.onchange = () => {
    const wanted = id.value.trim();
    if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(wanted)) {
      say("The recipe id starts with a letter or _, then letters, digits, _ or - (at most 64).", "warning");
      id.value = processBo().id;
      return;
    }
    modeler.get("modeling").updateProperties(canvas.getRootElement(), { id: wanted });
  };
}

// --- the form editor for the selected user task --------------------------------------
const formEditor = new FormEditor({
  container: $("form-editor"),
  propertiesPanel: { layout: { groups: { general: { open: true }, batchline: { open: true } } } },
  additionalModules: [{ __init__: ["batchlineFormProperties"], batchlineFormProperties: ["type", BatchlineFormProperties] }],
});
let formKey = null;
let importing = false;

formEditor.on("changed", () => {
  if (importing || !formKey) return;
  forms[formKey] = formEditor.saveSchema();
});

function slug(text) {
  const s = String(text || "").replace(/[^A-Za-z0-9_]+/g, "_").replace(/^_+|_+$/g, "");
  return /^[A-Za-z]/.test(s) ? s : "form_" + s;
}

function showEmpty(html, button) {
  const box = $("form-empty");
  box.textContent = "";
  box.hidden = false;
  const p = document.createElement("p");
  p.textContent = html;
  box.appendChild(p);
  if (button) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "button primary small";
    b.id = "create-form";
    b.textContent = button.label;
    b.onclick = button.run;
    box.appendChild(b);
  }
  $("form-editor").hidden = true;
}

async function showForm(element) {
  const title = $("form-title");
  formKey = null;
  if (!element || !element.businessObject.$instanceOf("bpmn:UserTask")) {
    title.textContent = "Form";
    showEmpty("Select a user task in the diagram to design its form.");
    return;
  }
  const bo = element.businessObject;
  const key = getProperty(bo, "formKey");
  title.textContent = "Form of “" + (bo.name || bo.id) + "”" + (key ? " (" + key + ")" : "");
  if (!key || !forms[key]) {
    const wanted = key || slug(bo.id) + "_form";
    showEmpty(key ? "The form " + key + " does not exist yet." : "This step has no form yet: the operator would have nothing to record.", {
      label: key ? "Create form " + key : "Create a form for this step",
      run: () => {
        if (!forms[wanted]) forms[wanted] = emptyForm(wanted);
        if (!key) setProperty(modeler.get("injector"), element, "formKey", wanted);
        showForm(element);
      },
    });
    return;
  }
  $("form-empty").hidden = true;
  $("form-editor").hidden = false;
  importing = true;
  try {
    await formEditor.importSchema(forms[key]);
    formKey = key;
  } catch (err) {
    showEmpty("This form cannot be opened in the editor: " + (err.message || err));
  } finally {
    importing = false;
  }
}

modeler.on("selection.changed", (event) => {
  const [element] = event.newSelection;
  showForm(element && element.type !== "label" ? element : null);
});
// a form id typed into the properties panel switches the form shown
modeler.on("commandStack.changed", () => {
  const [element] = modeler.get("selection").get();
  if (element && element.businessObject.$instanceOf("bpmn:UserTask") && getProperty(element.businessObject, "formKey") !== formKey) {
    showForm(element);
  }
});

// --- problems: markers and the list --------------------------------------------------
function clearProblems() {
  problems.forEach((p) => p.element_id && registry.get(p.element_id) && canvas.removeMarker(p.element_id, "bl-problem"));
  problems = [];
  const list = $("editor-problems");
  list.textContent = "";
  list.hidden = true;
}

function showProblems(found) {
  clearProblems();
  problems = found || [];
  const list = $("editor-problems");
  problems.forEach((p) => {
    const li = document.createElement("li");
    const onCanvas = p.element_id && registry.get(p.element_id);
    if (onCanvas) {
      canvas.addMarker(p.element_id, "bl-problem");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "problem-link";
      b.textContent = (onCanvas.businessObject.name || p.element_id) + ":";
      b.onclick = () => { modeler.get("selection").select(onCanvas); canvas.scrollToElement(onCanvas); };
      li.appendChild(b);
      li.appendChild(document.createTextNode(" "));
    } else if (p.element_id) {
      li.appendChild(document.createTextNode(p.element_id + (p.file ? " (" + p.file + ")" : "") + ": "));
    }
    li.appendChild(document.createTextNode(p.message));
    li.setAttribute("data-element", p.element_id || "");
    li.setAttribute("data-code", p.code || "");
    list.appendChild(li);
  });
  list.hidden = !problems.length;
}

// --- save and submit -----------------------------------------------------------------
function referencedForms() {
  const keys = new Set();
  registry.forEach((el) => {
    const bo = el.businessObject;
    if (bo && bo.$instanceOf && bo.$instanceOf("bpmn:UserTask")) {
      const k = getProperty(bo, "formKey");
      if (k) keys.add(k);
    }
  });
  const out = {};
  Object.keys(forms).forEach((k) => {
    if (keys.has(k) || (data.forms && k in data.forms)) out[k] = forms[k];
  });
  return out;
}

async function answer(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("application/json")) return response.json();
  if (response.status === 413) return { code: "too_large", message: "The recipe is too large to send (the server's request limit). Nothing was saved." };
  if (response.status === 400) return { code: "expired", message: "This page has expired (or was sent from another site). Reload the page; unsaved changes are lost." };
  return { code: String(response.status), message: "The server answered " + response.status + " " + response.statusText + "." };
}

// a call activity naming a template without a version: pin the effective one now, so the
// diagram QA sees is the diagram saved (the server would write the same)
function pinTemplates() {
  registry.forEach((el) => {
    const bo = el.businessObject;
    if (!bo || !bo.$instanceOf || !bo.$instanceOf("bpmn:CallActivity") || getProperty(bo, "templateVersion")) return;
    const t = (data.templates || []).find((c) => c.process_id === bo.calledElement);
    if (t) setProperty(modeler.get("injector"), el, "templateVersion", String(t.version));
  });
}

async function save() {
  const button = $("save-recipe");
  button.disabled = true;
  say("Saving…");
  try {
    pinTemplates();
    const { xml } = await modeler.saveXML({ format: true });
    const files = { ...(data.files || {}) };
    files[data.main_file] = xml;
    const body = new FormData();
    body.append("csrf_token", csrf);
    const payload = { files, forms: referencedForms(), base_id: current ? current.id : null };
    body.append("recipe", new Blob([JSON.stringify(payload)], { type: "application/json" }), "recipe.json");
    const response = await fetch(data.save_url, { method: "POST", body, credentials: "same-origin" });
    const result = await answer(response);
    if (!response.ok) {
      showProblems((result.details && result.details.problems) || []);
      say(result.message || "Not saved.", "error");
      return;
    }
    clearProblems();
    current = { id: result.id, key: result.recipe, version: result.version, status: result.status };
    $("recipe-status").textContent = result.status.replace("_", " ");
    $("recipe-status").className = "rstatus rstatus-" + result.status;
    $("recipe-id").readOnly = true;
    $("submit-recipe").disabled = result.status !== "draft";
    const used = (result.templates || []).map((t) => t.recipe + " v" + t.version);
    say((result.created ? "Saved as draft version " : "Nothing changed since version ") + result.version + " of " + result.recipe + "." +
      (used.length ? " Templates carried: " + used.join(", ") + "." : ""), "success");
    refreshSuggestions(0);
    history.replaceState(null, "", data.edit_url.replace("{id}", result.id));
  } catch (err) {
    say("Not saved: " + (err.message || err), "error");
  } finally {
    button.disabled = false;
  }
}

async function submit() {
  if (!current) return;
  const button = $("submit-recipe");
  button.disabled = true;
  say("Submitting for review…");
  const body = new FormData();
  body.append("csrf_token", csrf);
  try {
    const response = await fetch(data.submit_url.replace("{id}", current.id), { method: "POST", body, credentials: "same-origin" });
    const result = await answer(response);
    if (!response.ok) {
      showProblems((result.details && result.details.problems) || []);
      say("Not submitted: " + (result.message || response.status), "error");
      button.disabled = false;
      return;
    }
    $("recipe-status").textContent = (result.status || "in_review").replace("_", " ");
    say("Submitted for review" + (result.approval_process ? " (" + result.approval_process + ")" : "") + ". Another QA person reviews and approves it.", "success");
  } catch (err) {
    say("Not submitted: " + (err.message || err), "error");
    button.disabled = false;
  }
}

$("save-recipe").addEventListener("click", save);
$("submit-recipe").addEventListener("click", submit);

// --- suggestions: similar library components ----------------------------------------
let suggestTimer = null;
let suggestSeq = 0;

function ownDraft(xml) {
  // the recipe's own diagram and forms: the templates it calls would make it look like them
  const keys = new Set();
  registry.forEach((el) => {
    const bo = el.businessObject;
    if (bo && bo.$instanceOf && bo.$instanceOf("bpmn:UserTask") && getProperty(bo, "formKey")) keys.add(getProperty(bo, "formKey"));
  });
  const own = {};
  keys.forEach((k) => { if (forms[k]) own[k] = forms[k]; });
  return { bpmn: { [data.main_file]: xml }, forms: own };
}

function refreshSuggestions(delay) {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(loadSuggestions, delay === undefined ? 4000 : delay);
}

async function loadSuggestions() {
  const seq = ++suggestSeq;
  const list = $("suggestions");
  const state = $("suggestions-state");
  try {
    const { xml } = await modeler.saveXML();
    const body = new FormData();
    body.append("csrf_token", csrf);
    body.append("draft", JSON.stringify(ownDraft(xml)));
    const response = await fetch(data.suggestions_url, { method: "POST", body, credentials: "same-origin" });
    const result = await answer(response);
    if (seq !== suggestSeq) return; // a newer request is on its way
    list.textContent = "";
    if (!response.ok) {
      state.hidden = false;
      state.textContent = "No suggestions: " + (result.message || response.status);
      return;
    }
    const found = result.suggestions || [];
    state.textContent = found.length ? "" : "No library template is similar to this draft.";
    state.hidden = !!found.length;
    found.forEach((s) => list.appendChild(suggestionItem(s)));
    root.setAttribute("data-suggested", String(seq));
  } catch (err) {
    if (seq === suggestSeq) { state.hidden = false; state.textContent = "No suggestions: " + (err.message || err); }
  }
}

function suggestionItem(s) {
  const li = document.createElement("li");
  li.setAttribute("data-template", s.template);
  const head = document.createElement("div");
  head.className = "suggestion-head";
  const title = document.createElement("strong");
  title.textContent = s.title;
  const score = document.createElement("span");
  score.className = "suggestion-score";
  score.textContent = Math.round(s.score * 100) + "%";
  score.title = "Similarity of structure, step names and form fields (cosine, 0–100%)";
  head.append(title, score);
  const key = document.createElement("div");
  key.className = "muted small";
  key.textContent = s.template + (s.installed ? " · v" + s.installed.version + " effective" : " · not installed here");
  li.append(head, key);
  if (s.installed) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "button secondary small insert-template";
    b.textContent = "Insert as call activity";
    b.onclick = () => insertTemplate(s);
    li.appendChild(b);
  }
  return li;
}

// a call activity running the template: after the selected step (taking over its outgoing
// flow, so the template runs in sequence), or below the diagram when nothing is selected
function insertTemplate(s) {
  const modeling = modeler.get("modeling");
  const [selected] = modeler.get("selection").get();
  const shape = modeler.get("elementFactory").createShape({ type: "bpmn:CallActivity" });
  let placed;
  const bo = selected && selected.businessObject;
  const flowNode = selected && !selected.waypoints && selected.type !== "label" && bo.$instanceOf("bpmn:FlowNode") && !bo.$instanceOf("bpmn:EndEvent");
  if (flowNode) {
    const outgoing = (selected.outgoing || []).filter((c) => c.type === "bpmn:SequenceFlow");
    placed = modeler.get("autoPlace").append(selected, shape);
    if (outgoing.length === 1) {
      const [flow] = outgoing;
      modeling.reconnectStart(flow, placed, { x: placed.x + placed.width, y: placed.y + placed.height / 2 });
      const target = flow.target;
      if (target.x < placed.x + placed.width + 40) modeling.moveElements([target], { x: placed.x + placed.width + 80 - target.x, y: 0 });
    }
  } else {
    let bottom = 0;
    let left = Infinity;
    registry.forEach((el) => {
      if (el.waypoints || el.type === "label" || el === canvas.getRootElement()) return;
      bottom = Math.max(bottom, el.y + el.height);
      left = Math.min(left, el.x);
    });
    placed = modeling.createShape(shape, { x: (isFinite(left) ? left : 150) + 150, y: bottom + 80 }, canvas.getRootElement());
  }
  canvas.scrollToElement(placed);
  modeling.updateProperties(placed, { calledElement: s.template, name: s.title });
  setProperty(modeler.get("injector"), placed, "templateVersion", String(s.installed.version));
  modeler.get("selection").select(placed);
  say("Inserted " + s.title + " (v" + s.installed.version + ") as a call activity; saving brings its files and forms.", "info");
}

modeler.on("commandStack.changed", () => refreshSuggestions());
formEditor.on("changed", () => { if (!importing) refreshSuggestions(); });

// The properties panel subscribes to selection changes in an effect, after its first paint:
// select only then, or the panel keeps showing the process.
async function panelListening() {
  for (let i = 0; i < 100 && !document.querySelector("#bpmn-properties .bio-properties-panel"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 30)));
}

// --- start ---------------------------------------------------------------------------
(async function start() {
  const xml = data.mode === "new" ? newDiagram() : data.files[data.main_file];
  try {
    await modeler.importXML(xml);
  } catch (err) {
    say("This diagram cannot be opened: " + (err.message || err), "error");
    return;
  }
  canvas.zoom("fit-viewport", "auto");
  if (data.mode === "new") canvas.zoom(1, { x: 300, y: 120 });
  bindHeader();
  const others = Object.keys(data.files || {}).filter((n) => n !== data.main_file);
  if (others.length) $("other-files").textContent = "Also in this recipe, kept as they are: " + others.join(", ") + ".";
  const first = data.mode === "new" ? registry.get("first_step") : null;
  await panelListening();
  if (first) modeler.get("selection").select(first);
  else showForm(null);
  root.setAttribute("data-ready", "true");
  refreshSuggestions(0);
  window.batchlineEditor = { modeler, formEditor, forms };
})();
