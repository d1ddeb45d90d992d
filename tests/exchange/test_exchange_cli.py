"""``batchline recipe export REF -o FILE`` and ``batchline recipe import-batchml FILE``:
the file validates, and importing it gives the same content hash; only QA imports."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from lxml import etree

import workflows
from engine import recipes
from engine.exports import recipe_batchml
from tests.support import PASSWORD, RECIPES
from web import cli


@pytest.fixture
def run(runtime):
    def invoke(*args: str, user: str | None = None):
        env = {"BATCHLINE_USER": user, "BATCHLINE_PASSWORD": PASSWORD} if user else {}
        return CliRunner().invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env)

    return invoke


def test_export_and_import_back_with_the_same_hash(runtime, run, tmp_path):
    entry = workflows.get("tpl_hold_time")
    rv = recipes.import_recipe(runtime, dict(entry.files), forms=dict(entry.forms), user="quentin", recipe=entry.key)
    out = tmp_path / "hold.xml"
    r = run("recipe", "export", "tpl_hold_time@1", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.output
    assert recipe_batchml.validate(etree.fromstring(out.read_bytes())) == []
    assert run("recipe", "export", str(rv.id), "-o", str(tmp_path / "by-id.xml")).exit_code == 0
    r = run("--json", "recipe", "import-batchml", str(out), "--recipe", "hold_copy", "--user", "qa", user="qa")
    assert r.exit_code == 0, r.output
    answer = json.loads(r.output)
    assert answer["content_hash"] == rv.content_hash and answer["recipe"] == "hold_copy" and answer["created"]


def test_import_refuses_hostile_files_and_non_qa(runtime, run, tmp_path):
    r = run("recipe", "import-batchml", str(RECIPES.parent / "bpmn" / "xxe.bpmn"), "--user", "qa", user="qa")
    assert r.exit_code == 2 and "xml_refused" in r.output
    r = run("recipe", "import-batchml", str(RECIPES / "loop.bpmn"), "--user", "qa", user="qa")
    assert r.exit_code == 2 and "batchml_invalid" in r.output
    entry = workflows.get("tpl_hold_time")
    recipes.import_recipe(runtime, dict(entry.files), forms=dict(entry.forms), user="quentin", recipe=entry.key)
    out = tmp_path / "hold.xml"
    assert run("recipe", "export", "tpl_hold_time", "-o", str(out)).exit_code == 0
    r = run("recipe", "import-batchml", str(out), "--recipe", "x", "--user", "op", user="op")
    assert r.exit_code == 2 and "forbidden" in r.output
    r = run("recipe", "export", "no_such_recipe", "-o", str(out))
    assert r.exit_code == 2 and "recipe_not_found" in r.output
