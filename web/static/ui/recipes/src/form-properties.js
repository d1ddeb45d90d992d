// The "Batchline" group of the form editor's properties panel. Values are stored as the
// component's `properties` strings exactly as forms/ reads them (docs/forms.md):
// unit, decimals, hardMin/hardMax, alertLow/alertHigh, actionLow/actionHigh, critical,
// calculation; fieldKind (scan: materialLot / equipment / attachment) with material,
// equipmentClass, contentTypes, maxSize; and on the form itself signatureMeaning,
// witnessRequired, witnessRole. The server validates the result on save (limit order,
// calculation references); the hints here only save a round trip.
import { h } from "preact";
import {
  CheckboxEntry, SelectEntry, TextFieldEntry,
  isCheckboxEntryEdited, isSelectEntryEdited, isTextFieldEntryEdited,
} from "@bpmn-io/properties-panel";

const NUMBER = /^-?\d+(\.\d+)?$/;
const noDebounce = (fn) => fn;
let registry = null;

function props(field) {
  return field.properties || {};
}

// the field as it is now: two quick edits must not start from the same old properties
function update(editField, field, name, value) {
  field = (registry && registry.get(field.id)) || field;
  const next = { ...props(field) };
  if (value === undefined || value === null || value === "" || value === false) delete next[name];
  else next[name] = String(value);
  editField(field, ["properties"], next);
}

function text(name, label, extra = {}) {
  return {
    id: "batchline-form-" + name,
    isEdited: isTextFieldEntryEdited,
    component: (p) =>
      h(TextFieldEntry, {
        element: p.field,
        id: "batchline-form-" + name,
        label,
        debounce: noDebounce,
        getValue: () => props(p.field)[name] || "",
        setValue: (value) => update(p.editField, p.field, name, (value || "").trim()),
        ...extra,
      }),
  };
}

function limit(name, label) {
  return text(name, label, { validate: (v) => (v && !NUMBER.test(v.trim()) ? "A number, e.g. 7.2" : null) });
}

function checkbox(name, label) {
  return {
    id: "batchline-form-" + name,
    isEdited: isCheckboxEntryEdited,
    component: (p) =>
      h(CheckboxEntry, {
        element: p.field,
        id: "batchline-form-" + name,
        label,
        getValue: () => String(props(p.field)[name] || "").toLowerCase() === "true",
        setValue: (value) => update(p.editField, p.field, name, value ? "true" : ""),
      }),
  };
}

function select(name, label, options) {
  return {
    id: "batchline-form-" + name,
    isEdited: isSelectEntryEdited,
    component: (p) =>
      h(SelectEntry, {
        element: p.field,
        id: "batchline-form-" + name,
        label,
        getOptions: () => options,
        getValue: () => props(p.field)[name] || "",
        setValue: (value) => update(p.editField, p.field, name, value),
      }),
  };
}

const INPUTS = ["number", "textfield", "textarea", "select", "radio", "checkbox", "checklist", "datetime"];

function entriesFor(field) {
  const kind = props(field).fieldKind || "";
  if (field.type === "number") {
    return [
      text("unit", "Unit", { description: "Shown and recorded with the value, e.g. °C, g/L" }),
      text("decimals", "Decimal places", { validate: (v) => (v && !/^\d{1,2}$/.test(v.trim()) ? "0 to 12" : null) }),
      limit("hardMin", "Hard minimum (refused below)"),
      limit("actionLow", "Action limit, low"),
      limit("alertLow", "Alert limit, low"),
      limit("alertHigh", "Alert limit, high"),
      limit("actionHigh", "Action limit, high"),
      limit("hardMax", "Hard maximum (refused above)"),
      text("calculation", "Calculated from", { description: "e.g. volume * concentration; makes the field read-only (needs decimal places)" }),
      checkbox("critical", "Critical process parameter"),
    ];
  }
  if (field.type === "textfield") {
    const out = [
      select("fieldKind", "Scan / upload", [
        { value: "", label: "plain text" },
        { value: "materialLot", label: "material lot (scanned)" },
        { value: "equipment", label: "equipment (scanned)" },
        { value: "attachment", label: "attachment (file)" },
      ]),
    ];
    if (kind === "materialLot") out.push(text("material", "Expected material code"));
    if (kind === "equipment") out.push(text("equipmentClass", "Expected equipment class"));
    if (kind === "attachment") out.push(text("contentTypes", "Accepted file types", { description: "e.g. application/pdf, image/*" }), text("maxSize", "Largest file (bytes)"));
    out.push(checkbox("critical", "Critical"));
    return out;
  }
  if (INPUTS.includes(field.type)) return [checkbox("critical", "Critical")];
  if (field.type === "default") {
    return [
      select("signatureMeaning", "Signature meaning", [
        { value: "", label: "Performed (default)" },
        ...["Verified", "Reviewed", "Approved", "Released"].map((m) => ({ value: m, label: m })),
      ]),
      checkbox("witnessRequired", "Needs a witness signature"),
      text("witnessRole", "Witness role", { description: "Only with a witness, e.g. supervisor" }),
    ];
  }
  return [];
}

export default function BatchlineFormProperties(propertiesPanel, formFieldRegistry) {
  registry = formFieldRegistry;
  this.getGroups = (field, editField) => (groups) => {
    if (!field) return groups;
    const entries = entriesFor(field).map((e) => ({ ...e, field, editField }));
    if (!entries.length) return groups;
    const group = { id: "batchline", label: field.type === "default" ? "Batchline signing" : "Batchline limits and settings", entries };
    const general = groups.findIndex((g) => g.id === "general");
    groups.splice(general + 1, 0, group);
    return groups;
  };
  propertiesPanel.registerProvider(this, 400);
}
BatchlineFormProperties.$inject = ["propertiesPanel", "formFieldRegistry"];
