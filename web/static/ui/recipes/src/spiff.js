// Reading and writing Batchline's task settings in the BPMN exactly as the engine reads
// them (SpiffWorkflow 3.2 extension elements):
//   <spiffworkflow:properties><spiffworkflow:property name="formKey" value="..."/></...>
//   <spiffworkflow:instructionsForEndUser>markdown</...>
//   <spiffworkflow:serviceTaskOperator id="lims.sample" resultVariable="x">
//     <spiffworkflow:parameters><spiffworkflow:parameter id="" type="" value=""/></...></...>
// Every change goes through one multi-command, so Undo takes it back in one step.

export function extensionValues(bo, type) {
  const ext = bo.get("extensionElements");
  return ext ? ext.get("values").filter((v) => v.$instanceOf(type)) : [];
}

export function getProperty(bo, name) {
  for (const props of extensionValues(bo, "spiffworkflow:Properties")) {
    const found = props.get("properties").find((p) => p.name === name);
    if (found) return found.value;
  }
  return undefined;
}

export function getInstructions(bo) {
  const [el] = extensionValues(bo, "spiffworkflow:InstructionsForEndUser");
  return el ? el.value || "" : "";
}

export function getOperator(bo) {
  const [el] = extensionValues(bo, "spiffworkflow:ServiceTaskOperator");
  return el;
}

function ensureExtensions(injector, element, bo, cmds) {
  const moddle = injector.get("moddle");
  let ext = bo.get("extensionElements");
  if (!ext) {
    ext = moddle.create("bpmn:ExtensionElements", { values: [] });
    ext.$parent = bo;
    cmds.push({
      cmd: "element.updateModdleProperties",
      context: { element, moddleElement: bo, properties: { extensionElements: ext } },
    });
  }
  return ext;
}

function run(injector, cmds) {
  if (cmds.length) injector.get("commandStack").execute("properties-panel.multi-command-executor", cmds);
}

// set (or, for "" / null, remove) one spiffworkflow:property
export function setProperty(injector, element, name, value) {
  const bo = element.businessObject;
  const moddle = injector.get("moddle");
  const cmds = [];
  const empty = value === undefined || value === null || value === "";
  let [props] = extensionValues(bo, "spiffworkflow:Properties");
  const existing = props && props.get("properties").find((p) => p.name === name);
  if (empty) {
    if (existing) {
      cmds.push({
        cmd: "element.updateModdleProperties",
        context: { element, moddleElement: props, properties: { properties: props.get("properties").filter((p) => p !== existing) } },
      });
    }
    return run(injector, cmds);
  }
  if (existing) {
    cmds.push({ cmd: "element.updateModdleProperties", context: { element, moddleElement: existing, properties: { value: String(value) } } });
    return run(injector, cmds);
  }
  const ext = ensureExtensions(injector, element, bo, cmds);
  if (!props) {
    props = moddle.create("spiffworkflow:Properties", { properties: [] });
    props.$parent = ext;
    cmds.push({ cmd: "element.updateModdleProperties", context: { element, moddleElement: ext, properties: { values: [...ext.get("values"), props] } } });
  }
  const prop = moddle.create("spiffworkflow:Property", { name, value: String(value) });
  prop.$parent = props;
  cmds.push({ cmd: "element.updateModdleProperties", context: { element, moddleElement: props, properties: { properties: [...props.get("properties"), prop] } } });
  run(injector, cmds);
}

// the body of a one-off extension element (instructions); "" removes it
export function setBodyElement(injector, element, type, value) {
  const bo = element.businessObject;
  const cmds = [];
  const [existing] = extensionValues(bo, type);
  if (!value) {
    if (existing) {
      const ext = bo.get("extensionElements");
      cmds.push({ cmd: "element.updateModdleProperties", context: { element, moddleElement: ext, properties: { values: ext.get("values").filter((v) => v !== existing) } } });
    }
    return run(injector, cmds);
  }
  if (existing) {
    cmds.push({ cmd: "element.updateModdleProperties", context: { element, moddleElement: existing, properties: { value } } });
    return run(injector, cmds);
  }
  const ext = ensureExtensions(injector, element, bo, cmds);
  const created = injector.get("moddle").create(type, { value });
  created.$parent = ext;
  cmds.push({ cmd: "element.updateModdleProperties", context: { element, moddleElement: ext, properties: { values: [...ext.get("values"), created] } } });
  run(injector, cmds);
}

// service task: operator id, result variable, parameters "name (type) = expression" lines
export function parametersText(operator) {
  const list = operator && operator.get("parameterList");
  if (!list) return "";
  return list.get("parameters").map((p) => `${p.id} (${p.type || "str"}) = ${p.value || ""}`).join("\n");
}

const PARAM_LINE = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*([A-Za-z_]+)\s*\))?\s*=\s*(.*?)\s*$/;

export function parseParameters(text) {
  const out = [];
  const bad = [];
  (text || "").split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const m = PARAM_LINE.exec(line);
    if (!m) bad.push(i + 1);
    else out.push({ id: m[1], type: m[2] || "str", value: m[3] });
  });
  return { parameters: out, bad };
}

export function setOperator(injector, element, changes) {
  const bo = element.businessObject;
  const moddle = injector.get("moddle");
  const cmds = [];
  let operator = getOperator(bo);
  if (!operator) {
    const ext = ensureExtensions(injector, element, bo, cmds);
    // SpiffWorkflow's schema wants the parameters element, even when empty
    operator = moddle.create("spiffworkflow:ServiceTaskOperator", {});
    operator.$parent = ext;
    if (!("parameters" in changes)) changes = { ...changes, parameters: [] };
    cmds.push({ cmd: "element.updateModdleProperties", context: { element, moddleElement: ext, properties: { values: [...ext.get("values"), operator] } } });
  }
  const props = {};
  if ("id" in changes) props.id = changes.id || undefined;
  if ("resultVariable" in changes) props.resultVariable = changes.resultVariable || undefined;
  if ("parameters" in changes) {
    const list = moddle.create("spiffworkflow:Parameters", { parameters: [] });
    list.$parent = operator;
    list.parameters = changes.parameters.map((p) => {
      const param = moddle.create("spiffworkflow:Parameter", p);
      param.$parent = list;
      return param;
    });
    props.parameterList = list;
  }
  cmds.push({ cmd: "element.updateModdleProperties", context: { element, moddleElement: operator, properties: props } });
  run(injector, cmds);
}
