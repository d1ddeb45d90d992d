"""QA calls a library operation template from the recipe editor (Chromium): the call
activity's "Operation template" select sets calledElement and pins the effective
version; saving carries the template's BPMN file and forms into the new draft, with the
version recorded in the call activity. And while drafting, a near-copy of a template
shows that template first under "Similar library components", ready to insert.
Screenshots at 1024x768 in test-artifacts/browser/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

import workflows
from engine import recipes
from tests.support import approved_recipe

from .test_operator_ui import log_in
from .test_recipe_editor_ui import add_form_field, drag, open_group

pytestmark = pytest.mark.browser

TEMPLATE = "tpl_hold_time"


def shot(page: Page, artifacts, name: str) -> None:
    page.screenshot(path=str(artifacts / f"recipe-templates-{name}.png"))


@pytest.fixture
def template(runtime):
    entry = workflows.get(TEMPLATE)
    return approved_recipe(runtime, dict(entry.files), forms=dict(entry.forms), user="qa.dora")


def test_qa_picks_a_template_for_a_call_activity_and_saves(page: Page, runtime, template, artifacts):
    log_in(page, "qa.dora")
    page.goto("/recipes/new")
    expect(page.locator("#recipe-editor[data-ready=true]")).to_be_attached()
    page.fill("#recipe-name", "Buffer with hold")
    page.fill("#recipe-id", "qa_buffer_hold")
    page.locator("#recipe-id").press("Tab")
    add_form_field(page, "number")
    open_group(page, "#form-editor", "general")
    page.locator("#form-editor #bio-properties-panel-label").fill("Volume")
    page.locator("#form-editor #bio-properties-panel-key").fill("volume")
    page.wait_for_timeout(500)
    # the user task's equipment class (a Batchline property, kept in the BPMN)
    page.locator("#bio-properties-panel-batchline-equipment").fill("mixing-vessel")
    page.locator("#bio-properties-panel-batchline-equipment").press("Tab")

    # a step on the flow to the end, turned into a call activity, running the template
    page.evaluate("window.scrollTo(0, 0)")
    drag(page, ".djs-palette [data-action='create.task']", "#bpmn-canvas [data-element-id='Flow_end']")
    page.click(".djs-context-pad [data-action='replace']")
    # the replace list is longer than the tablet's screen: its entry is clicked where it is
    page.locator(".djs-popup [data-id='replace-with-call-activity']").dispatch_event("click")
    call_id = page.evaluate("window.batchlineEditor.modeler.get('selection').get()[0].id")
    open_group(page, "#bpmn-properties", "batchline")
    page.select_option("#bio-properties-panel-batchline-template", TEMPLATE)
    version = page.locator("#bio-properties-panel-batchline-template-version")
    expect(version).to_have_value(str(template.version))
    expect(page.locator("#bio-properties-panel-batchline-called")).to_have_value(TEMPLATE)
    version.scroll_into_view_if_needed()
    shot(page, artifacts, "01-template-picked")

    page.click("#save-recipe")
    expect(page.locator("#editor-message")).to_contain_text("Saved as draft version 1")
    expect(page.locator("#editor-message")).to_contain_text(f"Templates carried: {TEMPLATE} v{template.version}")
    shot(page, artifacts, "02-saved")
    (rv,) = [v for v in recipes.list_versions(runtime) if v.recipe == "qa_buffer_hold"]
    assert set(rv.bpmn) == {"recipe.bpmn", *template.bpmn}
    assert rv.bpmn["hold_time.bpmn"] == template.bpmn["hold_time.bpmn"]
    assert set(template.forms) <= set(rv.forms) and "first_step_form" in rv.forms, rv.bpmn["recipe.bpmn"]
    main = rv.bpmn["recipe.bpmn"]
    assert f'calledElement="{TEMPLATE}"' in main and f'id="{call_id}"' in main
    assert f'name="templateVersion" value="{template.version}"' in main
    assert 'name="equipmentClass" value="mixing-vessel"' in main
    assert not [e for e in page.js_errors if not e.startswith("Failed to load resource")], page.js_errors


def test_a_near_copy_of_a_template_suggests_that_template_first(page: Page, runtime, template, artifacts):
    entry = workflows.get(TEMPLATE)
    copy = entry.files["hold_time.bpmn"].decode().replace(TEMPLATE, "qa_my_hold").replace('name="', 'name="Our ', 1)
    draft = recipes.import_recipe(runtime, {"my_hold.bpmn": copy.encode()}, forms=dict(entry.forms), user="qa.dora")
    log_in(page, "qa.dora")
    page.goto(f"/recipes/{draft.id}/edit")
    expect(page.locator("#recipe-editor[data-suggested]")).to_be_attached(timeout=20_000)
    first = page.locator("#suggestions li").first
    expect(first).to_have_attribute("data-template", TEMPLATE)
    expect(first).to_contain_text(f"v{template.version} effective")
    shot(page, artifacts, "03-suggested")

    # insert it: a call activity running that template, pinned to its effective version
    page.locator("#bpmn-canvas").click(position={"x": 20, "y": 20})  # nothing selected
    first.locator(".insert-template").click()
    expect(page.locator("#editor-message")).to_contain_text("as a call activity")
    expect(page.locator("#bio-properties-panel-batchline-template")).to_have_value(TEMPLATE)
    bo = page.evaluate(
        "(() => { const bo = window.batchlineEditor.modeler.get('selection').get()[0].businessObject;"
        " return [bo.$type, bo.calledElement]; })()"
    )
    assert bo == ["bpmn:CallActivity", TEMPLATE]
    shot(page, artifacts, "04-inserted")
    assert not [e for e in page.js_errors if not e.startswith("Failed to load resource")], page.js_errors
