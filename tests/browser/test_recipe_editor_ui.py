"""QA designs a recipe in the browser: the bpmn-js Modeler with the Batchline properties,
the form-js editor with Batchline limits, save as a draft, validation marking the element
that fails, save again. Screenshots at 1024x768 in test-artifacts/browser/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from engine import recipes

from .test_operator_ui import log_in

pytestmark = pytest.mark.browser


def shot(page: Page, artifacts, name: str) -> None:
    page.screenshot(path=str(artifacts / f"recipe-editor-{name}.png"))


def open_group(page: Page, panel: str, group: str) -> None:
    header = page.locator(f"{panel} [data-group-id='group-{group}'] .bio-properties-panel-group-header")
    if "open" not in (header.get_attribute("class") or ""):
        header.click()


def add_form_field(page: Page, kind: str) -> None:
    page.locator(f".fjs-palette-field[data-field-type='{kind}']").drag_to(
        page.locator("#form-editor .fjs-drop-container-vertical").first
    )


def drag(page: Page, source: str, target: str) -> None:
    page.locator(source).scroll_into_view_if_needed()
    a, b = page.locator(source).bounding_box(), page.locator(target).bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(
            a["x"] + (b["x"] + b["width"] / 2 - a["x"]) * step / 10,
            a["y"] + (b["y"] + b["height"] / 2 - a["y"]) * step / 10,
        )
    page.mouse.up()


def form_entry(page: Page, name: str):
    return page.locator(f"#form-editor #bio-properties-panel-batchline-form-{name}")


def test_qa_designs_a_recipe_in_the_browser(page: Page, runtime, artifacts):
    log_in(page, "qa.dora")
    page.goto("/recipes/")
    page.click("text=Design a new recipe")
    expect(page.locator("#recipe-editor[data-ready=true]")).to_be_attached()
    # a new recipe: start, one user task (selected, with an empty form), end
    expect(page.locator("#form-title")).to_contain_text("First step")
    expect(page.locator("#bpmn-properties [data-group-id='group-batchline']")).to_be_visible()
    shot(page, artifacts, "01-new")

    page.fill("#recipe-name", "Buffer QA check")
    page.fill("#recipe-id", "qa_buffer_check")
    page.locator("#recipe-id").press("Tab")

    # the form editor: a number field with unit and limits (Batchline group)
    add_form_field(page, "number")
    expect(page.locator("#form-editor .fjs-editor-container [data-field-type='number']").first).to_be_visible()
    open_group(page, "#form-editor", "general")
    label = page.locator("#form-editor #bio-properties-panel-label")
    label.fill("pH")
    key = page.locator("#form-editor #bio-properties-panel-key")
    key.fill("ph")
    page.wait_for_timeout(500)  # the form editor applies label and key after a short debounce
    open_group(page, "#form-editor", "batchline")
    form_entry(page, "unit").fill("pH")
    form_entry(page, "decimals").fill("2")
    form_entry(page, "hardMin").fill("6.5")
    form_entry(page, "alertHigh").fill("7.4")
    form_entry(page, "hardMax").fill("7.8")
    form_entry(page, "hardMax").press("Tab")
    shot(page, artifacts, "02-form-limits")

    page.click("#save-recipe")
    expect(page.locator("#editor-message")).to_contain_text("Saved as draft version 1")
    shot(page, artifacts, "03-saved")
    (v1,) = [rv for rv in recipes.list_versions(runtime) if rv.recipe == "qa_buffer_check"]
    assert v1.status == "draft" and v1.name == "Buffer QA check" and v1.created_by == "qa.dora"
    (field,) = v1.forms["first_step_form"]["components"]
    assert field["key"] == "ph"
    assert field["properties"] == {
        "unit": "pH",
        "decimals": "2",
        "hardMin": "6.5",
        "alertHigh": "7.4",
        "hardMax": "7.8",
    }

    # a second step dropped from the palette onto the flow to the end: a user task without a form
    drag(page, ".djs-palette [data-action='create.task']", "#bpmn-canvas [data-element-id='Flow_end']")
    page.click(".djs-context-pad [data-action='replace']")
    page.click(".djs-popup [data-id='replace-with-user-task']")
    new_id = page.evaluate("window.batchlineEditor.modeler.get('selection').get()[0].id")
    page.click("#save-recipe")
    expect(page.locator("#editor-message")).to_contain_text("Not saved")
    shot(page, artifacts, "04-problem-marked")
    problem = page.locator(f"#editor-problems li[data-element='{new_id}']")
    expect(problem).to_contain_text("has no form")
    expect(page.locator(f"#bpmn-canvas .djs-element.bl-problem[data-element-id='{new_id}']")).to_be_attached()
    shot(page, artifacts, "04-problem-marked")
    assert len([rv for rv in recipes.list_versions(runtime) if rv.recipe == "qa_buffer_check"]) == 1

    # fix it: the problem links to the task, whose form pane offers to create its form
    problem.locator(".problem-link").click()
    page.click("#create-form")
    add_form_field(page, "checkbox")
    open_group(page, "#form-editor", "general")
    page.locator("#form-editor #bio-properties-panel-label").fill("Buffer clear, no particles")
    page.locator("#form-editor #bio-properties-panel-key").fill("clear")
    page.click("#save-recipe")
    expect(page.locator("#editor-message")).to_contain_text("Saved as draft version 2")
    expect(page.locator("#editor-problems")).to_be_hidden()
    expect(page.locator("#bpmn-canvas .djs-element.bl-problem")).to_have_count(0)
    shot(page, artifacts, "05-fixed-saved")
    versions = sorted(
        (rv for rv in recipes.list_versions(runtime) if rv.recipe == "qa_buffer_check"), key=lambda v: v.version
    )
    assert [v.version for v in versions] == [1, 2] and versions[0].content_hash != versions[1].content_hash
    assert {t["form"] for t in versions[1].tasks if t["kind"] == "user"} == {"first_step_form", f"{new_id}_form"}

    # submit: the draft goes to review (QA's approval flow, where one is effective)
    page.click("#submit-recipe")
    expect(page.locator("#editor-message")).to_contain_text("Submitted for review")
    expect(page.locator("#recipe-status")).to_have_text("in review")
    shot(page, artifacts, "06-submit")
    assert recipes.get_version(runtime, versions[1].id).status == "in_review"

    page.goto(f"/recipes/{versions[1].id}")
    expect(page.locator("#diagram-canvas[data-loaded]")).to_be_attached()
    expect(page.locator("#forms")).to_contain_text("pH")
    expect(page.locator("#history")).to_contain_text("recipe imported")
    shot(page, artifacts, "07-view")
    page.goto("/recipes/")
    shot(page, artifacts, "08-list")
    # the refused save (422) and the submit answer are expected; nothing else may fail
    assert not [e for e in page.js_errors if not e.startswith("Failed to load resource")], page.js_errors
