"""Recipe BPMN: unsafe XML and hostile scripts refused, Spiff's failures made readable,
service tasks wait for the job executor, specs and workflows survive serialization."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID
from xml.sax.saxutils import escape

import pytest
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.bpmn import (
    MAX_BPMN_BYTES,
    BatchlineServiceTask,
    RecipeInvalid,
    XmlRefused,
    make_serializer,
    parse_recipe,
    spec_from_dict,
    spec_to_dict,
    validate_recipe,
)
from engine.scripting import make_script_engine

FIXTURES = Path(__file__).resolve().parents[1] / "bpmn"
RECIPE = ("recipe_parent.bpmn", "release_buffer.bpmn")


def files(*names):
    return {name: (FIXTURES / name).read_bytes() for name in names}


def process(body, flows, pid="p", extra=""):
    """A one-process definitions document; `flows` is a list of (source, target[, condition])."""
    seq = "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{f[0]}" targetRef="{f[1]}">'
        + (f"<bpmn:conditionExpression>{escape(f[2])}</bpmn:conditionExpression>" if len(f) > 2 else "")
        + "</bpmn:sequenceFlow>"
        for i, f in enumerate(flows)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
        f'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        f'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="x">'
        f'{extra}<bpmn:process id="{pid}" isExecutable="true">{body}{seq}</bpmn:process>'
        f"</bpmn:definitions>"
    ).encode()


def script_task(script, tid="s", pre=None):
    ext = (
        (
            f"<bpmn:extensionElements><spiffworkflow:preScript>{escape(pre)}</spiffworkflow:preScript>"
            f"</bpmn:extensionElements>"
        )
        if pre
        else ""
    )
    return f'<bpmn:scriptTask id="{tid}">{ext}<bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>'


def linear(*middle):
    ids = ["start", *middle, "end"]
    return list(zip(ids, ids[1:]))


def workflow_of(recipe):
    return BpmnWorkflow(recipe.spec, recipe.subprocess_specs, script_engine=make_script_engine())


# --- XML safety ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["xxe.bpmn", "billion_laughs.bpmn"])
def test_doctype_entities_refused(fixture):
    with pytest.raises(XmlRefused) as err:
        parse_recipe(files(fixture))
    assert err.value.code == "xml_refused"
    [problem] = err.value.problems
    assert problem.code == "xml_doctype" and problem.file == fixture
    assert "DOCTYPE" in problem.message and "passwd" not in str(err.value)


def test_malformed_and_oversized_xml_refused():
    assert validate_recipe({"a.bpmn": b"<bpmn:definitions"})[0].code == "xml_malformed"
    assert validate_recipe({"big.bpmn": b" " * (MAX_BPMN_BYTES + 1)})[0].code == "xml_too_large"


# --- recipe structure -----------------------------------------------------------------


def test_multi_file_recipe_with_call_activities():
    recipe = parse_recipe(files(*RECIPE))
    assert (recipe.process_id, recipe.name) == ("buffer_prep", "Buffer preparation")
    assert set(recipe.subprocess_specs) == {"mix_buffer", "release_buffer"}
    forms = {(u.element_id, u.form_key, u.instructions) for u in recipe.user_tasks}
    assert ("ut_weigh", "weigh_form", "Weigh the NaCl on balance B-12 and scan the lot.") in forms
    assert ("ut_release", "release_form", "Check the LIMS result and release.") in forms
    [svc] = recipe.service_tasks
    assert (svc.element_id, svc.operator, svc.result_variable) == (
        "svc_erp",
        "erp.confirm_consumption",
        "erp_confirmation",
    )
    assert svc.parameters["order"] == {"value": "order_id", "type": "str"}
    [timer] = recipe.timers
    assert (timer.element_id, timer.kind, timer.expression) == ("timer_settle", "duration", '"PT5M"')
    [msg] = recipe.messages
    assert (msg.element_id, msg.message, msg.correlation_keys) == ("wait_lims", "lims_result", ("batch_key",))
    assert msg.correlation_properties == {"batch_id": "batch_id"}
    assert isinstance(recipe.subprocess_specs["release_buffer"].task_specs["svc_erp"], BatchlineServiceTask)


def test_process_id_can_be_chosen():
    assert parse_recipe(files(*RECIPE), process_id="release_buffer").process_id == "release_buffer"
    assert validate_recipe(files(*RECIPE), process_id="nope")[0].code == "process_not_found"


def test_not_executable_is_refused_readably():
    with pytest.raises(RecipeInvalid) as err:
        parse_recipe(files("not_executable.bpmn"))
    [problem] = err.value.problems
    assert problem.code == "not_executable" and 'isExecutable="false"' in problem.message


def test_missing_called_process_names_the_call_activity():
    [problem] = validate_recipe(files("missing_called.bpmn"))
    assert (problem.code, problem.element_id, problem.file) == (
        "called_process_missing",
        "call_chromatography",
        "missing_called.bpmn",
    )
    assert "chromatography_op" in problem.message
    # the same recipe without its second file
    [problem] = validate_recipe(files("recipe_parent.bpmn"))
    assert (problem.element_id, problem.code) == ("call_release", "called_process_missing")


def test_undefined_message_is_readable():
    [problem] = validate_recipe(files("bad_message_ref.bpmn"))
    assert (problem.code, problem.element_id) == ("undefined_reference", "wait_qms")
    assert "qms_status" in problem.message


def test_pitfall_undefined_message_is_a_type_error_inside_spiff():
    """Pins 3.2.0: `raise_validation_exception(..., node=...)` is a TypeError, wrapped by the task parser."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_str((FIXTURES / "bad_message_ref.bpmn").read_bytes(), "bad_message_ref.bpmn")
    with pytest.raises(ValidationException, match="unexpected keyword argument 'node'"):
        parser.get_spec("waits")


def test_long_sequential_process_is_refused_readably():
    ids = [f"t{i}" for i in range(600)]
    xml = process(
        '<bpmn:startEvent id="start"/>' + "".join(f'<bpmn:task id="{t}"/>' for t in ids) + '<bpmn:endEvent id="end"/>',
        linear(*ids),
    )
    [problem] = validate_recipe({"long.bpmn": xml})
    assert problem.code == "process_too_long"
    assert problem.message.startswith("process too long: use a call activity or a loop")
    assert problem.file == "long.bpmn"


def test_schema_errors_are_located():
    xml = process('<bpmn:startEvent id="start"/><bpmn:bogus id="x"/>', [])
    [problem] = validate_recipe({"bad.bpmn": xml})
    assert problem.code == "bpmn_invalid" and problem.file == "bad.bpmn" and problem.line


# --- scripts at parse time -------------------------------------------------------------

HOSTILE = ["import os", "open('/etc/passwd')", "exec('x=1')", "eval('1')", "x = ().__class__.__base__.__subclasses__()"]


@pytest.mark.parametrize("script", HOSTILE)
def test_hostile_script_task_refused_at_parse_time(script):
    xml = process(
        '<bpmn:startEvent id="start"/>' + script_task(script, "calc") + '<bpmn:endEvent id="end"/>', linear("calc")
    )
    with pytest.raises(RecipeInvalid) as err:
        parse_recipe({"r.bpmn": xml})
    assert err.value.problems
    for problem in err.value.problems:
        assert (problem.code, problem.element_id, problem.file) == ("script_refused", "calc", "r.bpmn")
    assert "element calc" in str(err.value)


def test_hostile_code_found_everywhere_spiff_evaluates():
    gw = '<bpmn:exclusiveGateway id="gw" default="f3"/>'
    timer = (
        '<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>'
        'open("x").read()</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
    )
    loop = (
        '<bpmn:task id="again"><bpmn:standardLoopCharacteristics><bpmn:loopCondition>'
        '__import__("os")</bpmn:loopCondition></bpmn:standardLoopCharacteristics></bpmn:task>'
    )
    body = (
        '<bpmn:startEvent id="start"/>'
        + script_task("import os", "s")
        + gw
        + timer
        + loop
        + '<bpmn:endEvent id="end"/>'
    )
    flows = [
        ("start", "s"),
        ("s", "gw"),
        ("gw", "wait", "().__class__"),
        ("gw", "again"),
        ("wait", "end"),
        ("again", "end"),
    ]
    problems = validate_recipe({"r.bpmn": process(body, flows)})
    where = {(p.element_id, p.message.split(" refused")[0]) for p in problems}
    assert {
        ("s", "script"),
        ("gw", "gateway condition"),
        ("wait", "event expression"),
        ("again", "loop/completion condition"),
    } <= where
    assert all(p.code == "script_refused" for p in problems)


def test_pre_script_on_script_task_is_reported_because_spiff_ignores_it():
    """Pins 3.2.0: spiff's ScriptTaskParser drops preScript/postScript of a script task."""
    xml = process(
        '<bpmn:startEvent id="start"/>' + script_task("x = 1", "s", pre="y = 2") + '<bpmn:endEvent id="end"/>',
        linear("s"),
    )
    [problem] = validate_recipe({"r.bpmn": xml})
    assert (problem.code, problem.element_id) == ("script_ignored", "s")
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(xml, "r.bpmn")
    spec = parser.get_spec("p").task_specs["s"]
    assert spec.prescript is None and spec.extensions["preScript"] == "y = 2"


# --- running ----------------------------------------------------------------------------

SERVICE_ONLY = process(
    '<bpmn:startEvent id="start"/><bpmn:serviceTask id="svc"><bpmn:extensionElements>'
    '<spiffworkflow:serviceTaskOperator id="lims.sample"><spiffworkflow:parameters/>'
    '</spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask><bpmn:endEvent id="end"/>',
    linear("svc"),
)


def test_service_task_stays_started_until_the_job_executor_completes_it():
    workflow = workflow_of(parse_recipe({"svc.bpmn": SERVICE_ONLY}))
    workflow.do_engine_steps()
    [svc] = workflow.get_tasks(spec_name="svc")
    assert svc.state == TaskState.STARTED and not workflow.is_completed()
    svc.data["sample_id"] = "S-1"  # what the job executor would do on callback
    svc.complete()
    workflow.do_engine_steps()
    assert workflow.is_completed() and workflow.data["sample_id"] == "S-1"


def test_workflow_round_trip_with_decimal_datetime_date_uuid():
    serializer = make_serializer()
    workflow = workflow_of(parse_recipe({"svc.bpmn": SERVICE_ONLY}))
    workflow.do_engine_steps()
    [svc] = workflow.get_tasks(spec_name="svc")
    values = {
        "mass": Decimal("10.125"),
        "at": datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
        "day": date(2024, 5, 1),
        "lot": UUID("12345678-1234-5678-1234-567812345678"),
        "hold": timedelta(minutes=5),
    }
    svc.data.update(values)
    text = serializer.serialize_json(workflow)
    assert '"10.125"' in text
    restored = serializer.deserialize_json(text)
    restored.script_engine = make_script_engine()
    [svc] = restored.get_tasks(spec_name="svc")
    assert {k: svc.data[k] for k in values} == values and type(svc.data["mass"]) is Decimal
    assert isinstance(svc.task_spec, BatchlineServiceTask) and svc.state == TaskState.STARTED
    svc.complete()
    restored.do_engine_steps()
    assert restored.is_completed()


def test_specs_stored_as_json_and_restored_run_the_whole_recipe():
    stored = json.loads(json.dumps(spec_to_dict(parse_recipe(files(*RECIPE)))))
    recipe = spec_from_dict(stored)
    assert recipe.process_id == "buffer_prep" and {u.form_key for u in recipe.user_tasks} == {
        "weigh_form",
        "release_form",
    }
    workflow = workflow_of(recipe)
    workflow.do_engine_steps()

    [weigh] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert weigh.task_spec.bpmn_id == "ut_weigh"
    weigh.data.update(mass_g=90.0, volume_l=10.0, order_id="PO-1", batch_id="B-1")
    weigh.run()
    workflow.do_engine_steps()

    [timer] = workflow.get_tasks(spec_name="timer_settle")
    assert timer.state == TaskState.WAITING  # "PT5M" evaluated by the restricted engine
    timer.internal_data["event_value"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    workflow.refresh_timers()
    workflow.do_engine_steps()

    [svc] = workflow.get_tasks(spec_name="svc_erp")
    assert svc.state == TaskState.STARTED
    assert svc.data["conc"] == 9.0 and svc.data["in_spec"] is True and svc.data["mixer_rpm"] == 200
    assert svc.data["mass_kg"] == 0.09  # the user task's post-script
    svc.complete()
    workflow.do_engine_steps()

    definition = MessageEventDefinition("lims_result")
    workflow.send_event(
        BpmnEvent(
            definition, payload={"batch_id": "B-1", "result": "pass"}, correlations={"batch_key": {"batch_id": "B-1"}}
        )
    )
    workflow.do_engine_steps()
    [release] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert release.task_spec.bpmn_id == "ut_release" and release.data["lims"]["result"] == "pass"
    release.run()
    workflow.do_engine_steps()
    assert workflow.is_completed()
