// The "Batchline" group of the BPMN properties panel: what the engine reads from a task.
// User task: form, instructions, role, equipment class, due, critical, qualification.
// Service task: connector (operation), result variable, parameters.
// Call activity: the operation template (and its version, pinned) or the unit procedure it runs.
import { h } from "preact";
import {
  CheckboxEntry, SelectEntry, TextAreaEntry, TextFieldEntry,
  isCheckboxEntryEdited, isSelectEntryEdited, isTextAreaEntryEdited, isTextFieldEntryEdited,
} from "@bpmn-io/properties-panel";
import { useService } from "bpmn-js-properties-panel";
import {
  getInstructions, getOperator, getProperty, parametersText, parseParameters,
  setBodyElement, setOperator, setProperty,
} from "./spiff.js";

const ROLES = ["operator", "supervisor", "qa"];
const DURATION = /^P(?:\d{1,4}W|(?:\d{1,4}D)?(?:T(?:\d{1,5}H)?(?:\d{1,6}M)?(?:\d{1,7}S)?)?)$/;

function is(element, type) {
  return element && element.businessObject && element.businessObject.$instanceOf(type);
}

function propertyEntry(id, name, label, extra) {
  return {
    id: "batchline-" + id,
    isEdited: isTextFieldEntryEdited,
    component: (props) => {
      const injector = useService("injector");
      const debounce = useService("debounceInput");
      return h(TextFieldEntry, {
        element: props.element,
        id: "batchline-" + id,
        label,
        debounce,
        getValue: (el) => getProperty(el.businessObject, name) || "",
        setValue: (value) => setProperty(injector, props.element, name, (value || "").trim()),
        ...extra,
      });
    },
  };
}

function userTaskEntries(config) {
  return [
    propertyEntry("form", "formKey", "Form id", {
      description: "The form the operator fills in (edit it on the right). Letters, digits, _ and -.",
      validate: (v) => (v && !/^[A-Za-z][A-Za-z0-9_-]{0,99}$/.test(v.trim()) ? "Letters, digits, _ and -, starting with a letter" : null),
    }),
    {
      id: "batchline-instructions",
      isEdited: isTextAreaEntryEdited,
      component: (props) => {
        const injector = useService("injector");
        const debounce = useService("debounceInput");
        return h(TextAreaEntry, {
          element: props.element,
          id: "batchline-instructions",
          label: "Instructions for the operator",
          description: "Markdown; shown above the form.",
          rows: 4,
          debounce,
          getValue: (el) => getInstructions(el.businessObject),
          setValue: (value) => setBodyElement(injector, props.element, "spiffworkflow:InstructionsForEndUser", value || ""),
        });
      },
    },
    {
      id: "batchline-role",
      isEdited: isSelectEntryEdited,
      component: (props) => {
        const injector = useService("injector");
        return h(SelectEntry, {
          element: props.element,
          id: "batchline-role",
          label: "Who performs it",
          getOptions: () => [{ value: "", label: "operator (default)" }, ...ROLES.map((r) => ({ value: r, label: r }))],
          getValue: (el) => getProperty(el.businessObject, "role") || "",
          setValue: (value) => setProperty(injector, props.element, "role", value),
        });
      },
    },
    propertyEntry("equipment", "equipmentClass", "Equipment class", {
      description: "The class of equipment the step runs on, e.g. bioreactor or chromatography-skid (kept with the step).",
      validate: (v) => (v && !/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$/.test(v.trim()) ? "Letters, digits, spaces, _ . and -" : null),
    }),
    propertyEntry("due", "due", "Due within", {
      description: "ISO-8601 duration after the step becomes ready, e.g. PT2H or P1DT4H.",
      validate: (v) => (v && !DURATION.test(v.trim()) ? "An ISO-8601 duration such as PT30M, PT2H, P1D" : null),
    }),
    propertyEntry("qual", "qual", "Qualification needed", {
      description: "e.g. aseptic-gowning: only people holding it may perform or witness the step.",
    }),
    criticalEntry(),
  ];
}

function criticalEntry() {
  return {
    id: "batchline-critical",
    isEdited: isCheckboxEntryEdited,
    component: (props) => {
      const injector = useService("injector");
      return h(CheckboxEntry, {
        element: props.element,
        id: "batchline-critical",
        label: "Critical step (its exceptions weigh more)",
        getValue: (el) => String(getProperty(el.businessObject, "critical") || "").toLowerCase() === "true",
        setValue: (value) => setProperty(injector, props.element, "critical", value ? "true" : ""),
      });
    },
  };
}

function serviceTaskEntries(config) {
  return [
    {
      id: "batchline-operator",
      isEdited: isTextFieldEntryEdited,
      component: (props) => {
        const injector = useService("injector");
        const debounce = useService("debounceInput");
        const known = config.connectors || [];
        return h(TextFieldEntry, {
          element: props.element,
          id: "batchline-operator",
          label: "Connector operation",
          description: "Installed: " + (known.length ? known.join(", ") : "none") + " (lims.sample is served by lims).",
          debounce,
          getValue: (el) => (getOperator(el.businessObject) || {}).id || "",
          setValue: (value) => setOperator(injector, props.element, { id: (value || "").trim() }),
          validate: (v) => {
            const name = (v || "").trim();
            if (!name) return "Name the connector operation this step calls";
            return known.includes(name) || known.includes(name.split(".")[0]) ? null : "Not installed here";
          },
        });
      },
    },
    {
      id: "batchline-result",
      isEdited: isTextFieldEntryEdited,
      component: (props) => {
        const injector = useService("injector");
        const debounce = useService("debounceInput");
        return h(TextFieldEntry, {
          element: props.element,
          id: "batchline-result",
          label: "Result variable",
          debounce,
          getValue: (el) => (getOperator(el.businessObject) || {}).resultVariable || "",
          setValue: (value) => setOperator(injector, props.element, { resultVariable: (value || "").trim() }),
        });
      },
    },
    {
      id: "batchline-parameters",
      isEdited: isTextAreaEntryEdited,
      component: (props) => {
        const injector = useService("injector");
        const debounce = useService("debounceInput");
        return h(TextAreaEntry, {
          element: props.element,
          id: "batchline-parameters",
          label: "Parameters",
          description: 'One per line: name (type) = expression, e.g. order (str) = process_order or unit (str) = "EA"',
          rows: 4,
          monospace: true,
          debounce,
          getValue: (el) => parametersText(getOperator(el.businessObject)),
          validate: (v) => {
            const { bad } = parseParameters(v);
            return bad.length ? "Line " + bad.join(", ") + ": write name (type) = expression" : null;
          },
          setValue: (value) => {
            const { parameters, bad } = parseParameters(value);
            if (!bad.length) setOperator(injector, props.element, { parameters });
          },
        });
      },
    },
  ];
}

function templateOf(config, bo) {
  return (config.templates || []).find((t) => t.process_id === bo.calledElement);
}

function callActivityEntries(config) {
  const templates = config.templates || [];
  return [
    {
      id: "batchline-template",
      isEdited: isSelectEntryEdited,
      component: (props) => {
        const injector = useService("injector");
        const modeling = useService("modeling");
        return h(SelectEntry, {
          element: props.element,
          id: "batchline-template",
          label: "Operation template",
          description: templates.length
            ? "An effective library template; saving brings its files and forms into the recipe."
            : "No effective operation templates here yet.",
          getOptions: () => [
            { value: "", label: "— none (a process of this recipe) —" },
            ...templates.map((t) => ({ value: t.process_id, label: t.name + " (v" + t.version + ")" })),
          ],
          getValue: (el) => (templateOf(config, el.businessObject) ? el.businessObject.calledElement : ""),
          setValue: (value) => {
            const chosen = templates.find((t) => t.process_id === value);
            // an unnamed step takes the template's name, so the diagram says what runs there
            if (chosen) modeling.updateProperties(props.element, { calledElement: chosen.process_id, name: props.element.businessObject.name || chosen.name });
            setProperty(injector, props.element, "templateVersion", chosen ? String(chosen.version) : "");
          },
        });
      },
    },
    {
      id: "batchline-template-version",
      isEdited: isSelectEntryEdited,
      component: (props) => {
        const injector = useService("injector");
        const bo = props.element.businessObject;
        const chosen = templateOf(config, bo);
        if (!chosen) return null;
        const pinned = getProperty(bo, "templateVersion") || "";
        const note = pinned && pinned !== String(chosen.version)
          ? "Pinned to v" + pinned + "; v" + chosen.version + " is effective now."
          : "The recipe runs this version until QA pins another.";
        return h(SelectEntry, {
          element: props.element,
          id: "batchline-template-version",
          label: "Template version pinned",
          description: note,
          getOptions: () => [
            ...(pinned ? [] : [{ value: "", label: "effective (v" + chosen.version + ") at save" }]),
            ...chosen.versions.map((v) => ({ value: String(v.version), label: "v" + v.version + " (" + v.status + ")" })),
          ],
          getValue: (el) => getProperty(el.businessObject, "templateVersion") || "",
          setValue: (value) => setProperty(injector, props.element, "templateVersion", value),
        });
      },
    },
    {
      id: "batchline-called",
      isEdited: isTextFieldEntryEdited,
      component: (props) => {
        const modeling = useService("modeling");
        const debounce = useService("debounceInput");
        return h(TextFieldEntry, {
          element: props.element,
          id: "batchline-called",
          label: "Process it runs (calledElement)",
          description: "The process id: a template above, or a unit procedure in this recipe's files.",
          debounce,
          getValue: (el) => el.businessObject.calledElement || "",
          setValue: (value) => modeling.updateProperties(props.element, { calledElement: (value || "").trim() || undefined }),
        });
      },
    },
  ];
}

export default function BatchlinePropertiesProvider(propertiesPanel, config) {
  this.getGroups = (element) => (groups) => {
    let entries = null;
    if (is(element, "bpmn:UserTask")) entries = userTaskEntries(config);
    else if (is(element, "bpmn:ServiceTask")) entries = serviceTaskEntries(config);
    else if (is(element, "bpmn:CallActivity")) entries = callActivityEntries(config);
    if (!entries) return groups;
    const group = { id: "batchline", label: "Batchline", entries };
    const general = groups.findIndex((g) => g.id === "general");
    groups.splice(general + 1, 0, group);
    return groups;
  };
  propertiesPanel.registerProvider(400, this);
}
BatchlinePropertiesProvider.$inject = ["propertiesPanel", "config.batchline"];
