"""Restricted scripts: hostile code refused statically and at runtime, recipe code still works."""

from datetime import datetime
from types import SimpleNamespace

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.spiff.parser import SpiffBpmnParser

from engine import bpmn
from engine.errors import BatchlineError, ScriptRefused
from engine.scripting import RestrictedEnvironment, check_script, compile_script, make_script_engine

DUNDER_WALK = "x = ().__class__.__base__.__subclasses__()"

HOSTILE = {
    "import": "import os",
    "from-import": "from os import path",
    "open": "data = open('/etc/passwd').read()",
    "exec": "exec('x = 1')",
    "eval": "x = eval('1 + 1')",
    "compile": "c = compile('1', 'f', 'eval')",
    "__import__": "os = __import__('os')",
    "getattr": "f = getattr(1, 'real')",
    "globals": "g = globals()",
    "vars": "v = vars()",
    "type": "t = type(1)",
    "breakpoint": "breakpoint()",
    "dunder walk": DUNDER_WALK,
    "private name": "x = _secret",
    "generator frame": "g = (i for i in [1])\nf = g.gi_frame",
    "str.format walk": "s = '{0.__class__}'.format(1)",
    "class": "class A:\n    pass",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_scripts_are_refused_statically(source):
    problems = check_script(source)
    assert problems and all(p.startswith("line ") for p in problems)


def test_refusal_names_the_problem():
    assert check_script("import os") == ["line 1: import statements are not allowed"]
    assert "'open' is not allowed" in check_script("open('x')", "eval")[0]
    assert any("'__class__'" in p for p in check_script(DUNDER_WALK))
    assert check_script("def f(:")[0].startswith("line 1: syntax error")
    with pytest.raises(ScriptRefused) as err:
        compile_script("import os")
    assert err.value.code == "script_refused" and "import" in err.value.message


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_scripts_are_refused_at_runtime(source):
    with pytest.raises(ScriptRefused):
        RestrictedEnvironment().execute(source, {})


def test_runtime_guards_refuse_what_static_check_cannot_see():
    env = RestrictedEnvironment()
    fmt = "{0.__class__}"
    with pytest.raises(ScriptRefused, match="str.format"):
        env.execute("s = fmt.format(1)", {"fmt": fmt})
    with pytest.raises(ScriptRefused, match="datetime"):
        env.execute("d.year = 1990", {"d": datetime(2024, 1, 1)})
    # task data cannot replace the guards: names starting with '_' are applied last
    data = {"_getattr_": getattr, "x": 1}
    with pytest.raises(ScriptRefused):
        env.execute("y = x.__class__", data)


LEGIT = """
total = 0
for w in weights:
    total += w
mean = total / len(weights)
spread = max(weights) - min(weights)
summary = {"n": len(weights), "mean": round(mean, 2), "ok": [w for w in weights if abs(w - mean) < 1]}
label = f"{lot}: {mean:.1f} g" if spread < 5 else "%s out of range" % lot
root = math.sqrt(16) + math.pi * 0
ordered = sorted(weights, reverse=True)
pairs = [(i, w) for i, w in enumerate(weights)]
first, second = ordered[0], ordered[1]
due = datetime(2024, 5, 1) + timedelta(hours=2)
if all(w > 0 for w in weights) and any(w > 10 for w in weights):
    status = "heavy"
else:
    status = "light"
summary["status"] = status
def helper(x):
    return x * 2
doubled = helper(total)
del scratch
"""


def test_legit_script_sets_task_data():
    data = {"weights": [10.0, 10.5, 9.5], "lot": "L-7", "scratch": 1}
    RestrictedEnvironment().execute(LEGIT, data)
    assert data["total"] == 30.0 and data["mean"] == 10.0
    assert data["summary"] == {"n": 3, "mean": 10.0, "ok": [10.0, 10.5, 9.5], "status": "heavy"}
    assert data["label"] == "L-7: 10.0 g"
    assert data["root"] == 4.0 and data["ordered"][0] == 10.5 and data["first"] == 10.5
    assert data["due"] == datetime(2024, 5, 1, 2) and data["doubled"] == 60.0
    assert "scratch" not in data  # `del` removes it from task data, as in Spiff
    assert "helper" not in data and "math" not in data  # functions/helpers never land in task data


def test_expressions_conditions_and_timers():
    env = RestrictedEnvironment()
    data = {"conc": 9.1, "items": [1, 2]}
    assert env.evaluate('"PT5M"', data) == "PT5M"
    assert env.evaluate("\n  conc > 9 and len(items) == 2\n", data) is True
    assert env.evaluate("date(2024, 1, 2).isoformat()", data) == "2024-01-02"
    data["date"] = "today"  # task data shadows the helper, no overwrite error
    assert env.evaluate("date", data) == "today"


def test_compiled_code_is_cached_by_source():
    assert compile_script("a + 1", "eval") is compile_script("a + 1", "eval")


def test_runtime_guard_when_static_check_is_bypassed(monkeypatch):
    """A script that slipped past the parse-time check still cannot escape while running."""
    monkeypatch.setattr(bpmn.scripts, "check_script", lambda source, mode="exec": [])
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:scriptTask id="evil"><bpmn:script>{DUNDER_WALK}</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="evil"/>
    <bpmn:sequenceFlow id="f2" sourceRef="evil" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""
    recipe = bpmn.parse_recipe({"evil.bpmn": xml.encode()})
    workflow = BpmnWorkflow(recipe.spec, recipe.subprocess_specs, script_engine=make_script_engine())
    with pytest.raises(ScriptRefused) as err:
        workflow.do_engine_steps()
    assert err.value.code == "script_refused"
    assert "__class__" in err.value.message and "[evil]" in err.value.message
    assert err.value.details["element_id"] == "evil"


def test_non_string_exception_argument_is_reported(tmp_path):
    """Spiff 3.2.0 builds its message with `":" + err.args[0]`: KeyError(1) became a TypeError."""
    engine = make_script_engine()
    task = _script_task_running("x = d[1]", {"d": {}}, engine)
    with pytest.raises(WorkflowTaskException, match="KeyError: 1"):
        task.workflow.do_engine_steps()


def _script_task_running(script, data, engine):
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:scriptTask id="s"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="s"/>
    <bpmn:sequenceFlow id="f2" sourceRef="s" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""
    recipe = bpmn.parse_recipe({"s.bpmn": xml.encode()})
    workflow = BpmnWorkflow(recipe.spec, recipe.subprocess_specs, script_engine=engine)
    workflow.get_tasks(spec_name="start")[0].data.update(data)
    return workflow.get_tasks(spec_name="start")[0]


SERVICE_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:serviceTask id="svc"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="erp.confirm" resultVariable="answer">
        <spiffworkflow:parameters>
          <spiffworkflow:parameter id="qty" type="int" value="2 + 3"/>
        </spiffworkflow:parameters>
      </spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="svc"/>
    <bpmn:sequenceFlow id="f2" sourceRef="svc" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def _stock_spiff_workflow(engine):
    """Spiff's own ServiceTask (calls the engine synchronously), not Batchline's waiting one."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(SERVICE_XML, "svc.bpmn")
    return BpmnWorkflow(parser.get_spec("p"), script_engine=engine)


def test_pitfall_call_service_exception_surfaces_as_name_error():
    """Pins SpiffWorkflow 3.2.0: PythonScriptEngine.call_service refers to an undefined `script`
    while wrapping the handler's exception. If this test fails, an upgrade fixed it."""

    class FailingEnvironment(TaskDataEnvironment):
        def call_service(self, context, **kwargs):
            raise RuntimeError("ERP down")

    workflow = _stock_spiff_workflow(PythonScriptEngine(environment=FailingEnvironment()))
    with pytest.raises(NameError, match="script"):
        workflow.do_engine_steps()
    with pytest.raises(NameError, match="script"):  # and directly, without a workflow around it
        PythonScriptEngine(FailingEnvironment()).call_service(SimpleNamespace(data={}))


def test_restricted_engine_reports_the_real_service_error():
    def handler(operation, params, data):
        raise RuntimeError("ERP down")

    with pytest.raises(WorkflowTaskException, match="ERP down"):
        _stock_spiff_workflow(make_script_engine(handler)).do_engine_steps()

    workflow = _stock_spiff_workflow(make_script_engine(lambda op, params, data: {"op": op, **params}))
    workflow.do_engine_steps()
    assert workflow.is_completed()
    assert workflow.data["answer"] == {"op": "erp.confirm", "qty": {"value": 5, "type": "int"}}

    with pytest.raises(BatchlineError, match="job executor"):
        _stock_spiff_workflow(make_script_engine()).do_engine_steps()
