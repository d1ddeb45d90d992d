"""Issue 10's "Done when", walked as the people would, in Chromium at 1024x768.

A QA author designs a recipe from two library operation templates in the editor, gives
its first step a form field with limits, saves, is told which user task has no form,
fixes it and submits; her own review of it is refused by the engine; a second QA person
reviews and a third approves, both with e-signatures from their task list; the job
worker runs; the recipe is effective; a supervisor starts a batch and an operator sees
the new field with its limits. Screenshots: test-artifacts/browser/authoring-*.png.

Everything goes through the pages; the test's process runs the job worker (which
``batchline serve --with-worker`` runs in production).
"""

from __future__ import annotations

import re
import shutil
import threading

import pytest
import requests
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from engine import batches, jobs, recipe_lifecycle, recipes, users
from engine.users import Person
from tests.support import make_runtime

from .conftest import PEOPLE
from .test_operator_ui import log_in
from .test_recipe_editor_ui import add_form_field, drag, form_entry, open_group

pytestmark = pytest.mark.browser  # about 20 s: not slow

TEMPLATES = ("tpl_hold_time", "tpl_line_clearance")
RECIPE = "qa_e2e_buffer_release"
#: two more QA people: author ≠ reviewer ≠ approver
MORE_PEOPLE = {
    "qa.erik": ("Erik Nilsson", ["qa"], "Erik-secret-2025"),
    "qa.fiona": ("Fiona Berg", ["qa"], "Fiona-secret-2025"),
    "qa.setup": ("Installation QA", ["qa"], "Setup-secret-2025"),
}
EVERYONE = {**PEOPLE, **MORE_PEOPLE}


def secret(username: str) -> str:
    return EVERYONE[username][2]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, sqlite_template):
    """A runtime of its own: QA's approval flow is effective here (the other browser tests
    run without one), with the two library templates, as a site after ``make demo``."""
    import workflows

    path = tmp_path_factory.mktemp("authoring") / "batchline.db"
    shutil.copy(sqlite_template, path)
    rt = make_runtime(f"sqlite:///{path}", session_timeout_minutes=15)
    for username, (printed, roles, pw) in EVERYONE.items():
        users.create_user(rt, username, printed, roles, by="test", password=pw)
    signer = Person("qa.erik", MORE_PEOPLE["qa.erik"][0], ("qa",))
    # imported by one QA person, approved directly by another (no flow is effective yet);
    # the approval flow last, as the demo does
    for key in (*TEMPLATES, recipe_lifecycle.APPROVAL_FLOW):
        entry = workflows.get(key)
        rv = recipes.import_recipe(rt, entry.files, forms=entry.forms, user="qa.setup", recipe=entry.key)
        recipe_lifecycle.approve(rt, rv.id, signer=signer, reason="installation: library entry")
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def base_url(runtime) -> str:
    from web.app import create_app

    server = make_server("127.0.0.1", 0, create_app(runtime=runtime), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="authoring-test-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def shot(page: Page, artifacts, name: str) -> None:
    page.screenshot(path=str(artifacts / f"authoring-{name}.png"), full_page=True)


def api(runtime, base_url: str, who: str):
    """A requests session with ``who``'s API token."""
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + users.create_token(runtime, who, "e2e", by="test")
    session.base = base_url  # type: ignore[attr-defined]
    return session


def run_jobs(runtime) -> None:
    """The job worker, in the test process: until nothing is due."""
    while jobs.run_due(runtime):
        pass


def selected_id(page: Page) -> str:
    return page.evaluate("window.batchlineEditor.modeler.get('selection').get()[0].id")


def flow_into(page: Page, target: str) -> str:
    """The id of the sequence flow that ends in ``target``."""
    return page.evaluate(
        """(target) => window.batchlineEditor.modeler.get('elementRegistry')
              .filter((e) => e.type === 'bpmn:SequenceFlow' && e.target && e.target.id === target)[0].id""",
        target,
    )


def add_task_before_end(page: Page, replace_with: str) -> str:
    """Drop a task from the palette onto the flow into the end event, change its type."""
    page.evaluate("window.scrollTo(0, 0)")  # back up to the diagram, as a person would
    drag(page, ".djs-palette [data-action='create.task']", f"#bpmn-canvas [data-element-id='{flow_into(page, 'end')}']")
    page.click(".djs-context-pad [data-action='replace']")
    page.keyboard.type(replace_with.replace("-", " "))  # the menu's search: the list is longer than the page
    page.click(f".djs-popup [data-id='replace-with-{replace_with}']")
    return selected_id(page)


def sign_task(page: Page, username: str, *, meaning: str, user_id: bool = True) -> None:
    page.click("#open-sign")
    expect(page.locator("#sign-dialog")).to_be_visible()
    expect(page.locator("#sign-meaning")).to_have_text(meaning)
    if user_id:
        page.fill("#signer_id", username)
    page.fill("#password", secret(username))
    page.click("#sign-submit")


def open_my_task(page: Page, process: str, name: str) -> None:
    page.goto("/")
    expect(page.locator("h1")).to_have_text("My tasks")
    page.click(f".tasklist li:has-text('{process}') a:has-text('{name}')")
    expect(page.locator("h1")).to_contain_text(name)


def log_out(page: Page) -> None:
    page.click("button:has-text('Log out')")
    expect(page.locator("#username")).to_be_visible()


def review(page: Page, username: str, *, user_id: bool = True) -> None:
    page.get_by_label("Process flow matches the master batch record").check()
    page.get_by_label("Limits and critical parameters match the control strategy").check()
    page.get_by_label("Approve", exact=True).check()
    sign_task(page, username, meaning="Reviewed", user_id=user_id)
    expect(page.locator(".flash-success")).to_be_visible()


def approve(page: Page, username: str, *, user_id: bool = True) -> None:
    page.get_by_label("I approve this recipe version for production").check()
    sign_task(page, username, meaning="Approved", user_id=user_id)
    expect(page.locator(".flash-success")).to_be_visible()


def test_qa_authors_a_recipe_from_templates_and_it_runs_after_e_signed_approval(
    page: Page, context, runtime, base_url, artifacts
):
    # --- 1. the author designs the recipe in the editor ----------------------------------
    log_in(page, "qa.dora")
    page.goto("/recipes/new")
    expect(page.locator("#recipe-editor[data-ready=true]")).to_be_attached()
    page.fill("#recipe-name", "Buffer release check")
    page.fill("#recipe-id", RECIPE)
    page.locator("#recipe-id").press("Tab")

    # the first step's form: a number field with unit and limits
    add_form_field(page, "number")
    open_group(page, "#form-editor", "general")
    page.locator("#form-editor #bio-properties-panel-label").fill("Conductivity")
    page.locator("#form-editor #bio-properties-panel-key").fill("conductivity")
    page.wait_for_timeout(500)  # label and key are applied after a debounce
    open_group(page, "#form-editor", "batchline")
    form_entry(page, "unit").fill("mS/cm")
    form_entry(page, "hardMin").fill("10")
    form_entry(page, "alertHigh").fill("16")
    form_entry(page, "hardMax").fill("18")
    form_entry(page, "hardMax").press("Tab")
    shot(page, artifacts, "01-form-limits")

    # two call activities running the library's operation templates
    calls = []
    for template in TEMPLATES:
        call = add_task_before_end(page, "call-activity")
        called = page.locator("#bpmn-properties #bio-properties-panel-batchline-called")
        called.fill(template)
        called.press("Tab")
        page.wait_for_timeout(400)
        calls.append(call)
    shot(page, artifacts, "02-two-templates")

    # saving brings each called template's effective version into the recipe
    page.click("#save-recipe")
    expect(page.locator("#editor-message")).to_contain_text("Saved as draft version 1")
    for template in TEMPLATES:
        expect(page.locator("#editor-message")).to_contain_text(f"{template} v1")
    shot(page, artifacts, "03-templates-carried")
    (saved,) = [rv for rv in recipes.list_versions(runtime) if rv.recipe == RECIPE]
    assert saved.status == "draft" and {"hold_time.bpmn", "line_clearance.bpmn"} <= set(saved.bpmn)
    v1 = {"id": saved.id, "version": saved.version}

    # the author goes on in the editor: the templates are kept, a step without a form is marked
    page.goto(f"/recipes/{v1['id']}/edit")
    expect(page.locator("#recipe-editor[data-ready=true]")).to_be_attached()
    expect(page.locator("#other-files")).to_contain_text("hold_time.bpmn")
    expect(page.locator("#other-files")).to_contain_text("line_clearance.bpmn")
    check = add_task_before_end(page, "user-task")
    page.click("#save-recipe")
    expect(page.locator("#editor-message")).to_contain_text("Not saved")
    problem = page.locator(f"#editor-problems li[data-element='{check}']")
    expect(problem).to_contain_text("has no form")
    expect(page.locator(f"#bpmn-canvas .djs-element.bl-problem[data-element-id='{check}']")).to_be_attached()
    shot(page, artifacts, "04-no-form-marked")

    problem.locator(".problem-link").click()
    page.click("#create-form")
    add_form_field(page, "checkbox")
    open_group(page, "#form-editor", "general")
    page.locator("#form-editor #bio-properties-panel-label").fill("Buffer clear, no particles")
    page.locator("#form-editor #bio-properties-panel-key").fill("clear")
    page.wait_for_timeout(500)
    page.click("#save-recipe")
    expect(page.locator("#editor-message")).to_contain_text("Saved as draft version 2")
    expect(page.locator("#bpmn-canvas .djs-element.bl-problem")).to_have_count(0)
    shot(page, artifacts, "05-saved")
    v2 = max((rv for rv in recipes.list_versions(runtime) if rv.recipe == RECIPE), key=lambda v: v.version)
    assert v2.version == 2 and set(TEMPLATES) <= {
        c for c in re.findall(r'calledElement="([^"]+)"', v2.bpmn["recipe.bpmn"])
    }
    (field,) = v2.forms["first_step_form"]["components"]
    assert field["key"] == "conductivity"
    assert field["properties"] == {"unit": "mS/cm", "hardMin": "10", "alertHigh": "16", "hardMax": "18"}

    page.click("#submit-recipe")
    expect(page.locator("#editor-message")).to_contain_text(f"Submitted for review (QP-RA-{RECIPE}-v2)")
    expect(page.locator("#recipe-status")).to_have_text("in review")
    shot(page, artifacts, "06-submitted")
    process = f"QP-RA-{RECIPE}-v2"
    run_jobs(runtime)

    # --- 2. self-approval is refused -----------------------------------------------------
    open_my_task(page, process, "QA review")
    shot(page, artifacts, "07-author-opens-review")
    # the author's own review is refused at the task, before her password is checked
    page.get_by_label("Process flow matches the master batch record").check()
    page.get_by_label("Limits and critical parameters match the control strategy").check()
    page.get_by_label("Approve", exact=True).check()
    sign_task(page, "qa.dora", meaning="Reviewed")
    expect(page.locator("main")).to_contain_text("the author takes no part in its review or approval")
    shot(page, artifacts, "08-self-review-refused")
    assert batches.steps(runtime, process) == []  # nothing recorded
    assert recipes.get_version(runtime, v2.id).status == "in_review"
    log_out(page)

    # --- 3. a second QA person reviews, a third approves, from their task lists -----------
    log_in(page, "qa.erik", secret("qa.erik"))
    open_my_task(page, process, "QA review")
    review(page, "qa.erik")
    log_out(page)
    log_in(page, "qa.fiona", secret("qa.fiona"))
    page.goto("/")
    shot(page, artifacts, "10-approver-task-list")
    open_my_task(page, process, "Approve recipe version")
    shot(page, artifacts, "11-approve-task")
    approve(page, "qa.fiona")
    run_jobs(runtime)
    shown = recipes.get_version(runtime, v2.id)
    assert shown.status == "effective" and shown.approved_by == ["qa.erik", "qa.fiona"]
    page.goto("/recipes/")
    rows = page.locator("tbody tr").filter(has=page.locator("code", has_text=re.compile(f"^{RECIPE}$")))
    expect(rows).to_have_count(2)  # v2 first, then v1
    expect(rows.nth(0).locator(".rstatus")).to_have_text("effective")
    expect(rows.nth(0)).to_contain_text("qa.dora")
    expect(rows.nth(1).locator(".rstatus")).to_have_text("draft")
    for template in TEMPLATES:  # where-used: the templates name the new recipe
        used = page.locator("tbody tr").filter(has=page.locator("code", has_text=re.compile(f"^{template}$")))
        expect(used).to_contain_text(RECIPE)
    shot(page, artifacts, "12-effective-in-list")
    page.goto(f"/recipes/{v2.id}")
    expect(page.locator("#history")).to_contain_text("recipe approved")
    shot(page, artifacts, "13-recipe-page")
    log_out(page)

    # --- 4. a supervisor starts a batch of it; the operator sees the new field -------------
    log_in(page, "sup.carl", secret("sup.carl"))
    page.goto("/batches")
    page.click("#start-batch")
    page.select_option("#recipe", RECIPE)
    page.fill("#batch_id", "E2E-001")
    shot(page, artifacts, "14-supervisor-starts")
    page.click("#start-submit")
    expect(page.locator(".flash-success")).to_contain_text("Batch E2E-001 started")
    assert batches.get_batch(runtime, "E2E-001")["recipe_version_id"] == v2.id
    log_out(page)
    log_in(page, "op.anna")
    open_my_task(page, "E2E-001", "First step")
    field = page.locator("#f-conductivity")
    expect(field).to_be_visible()
    expect(page.locator("label[for=f-conductivity]")).to_contain_text("Conductivity")
    limits = page.locator("#f-conductivity-limits")
    expect(limits).to_contain_text("Alert")
    expect(limits).to_contain_text("Allowed")
    field.fill("17")
    expect(page.locator("#f-conductivity-hint")).to_contain_text("Alert")
    shot(page, artifacts, "15-operator-sees-field")
    expect(limits).to_contain_text("at most 16 mS/cm")
    expect(limits).to_contain_text("10 to 18 mS/cm")
    assert not [e for e in page.js_errors if not e.startswith("Failed to load resource")], page.js_errors
