"""``batchline materials|lots|equipment``: the same rules as the API from a shell — the
acting person signs in, needs the role, gives a reason; an operator changes nothing."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.support import PASSWORD
from web import cli


def invoke(runtime, user: str, *args: str):
    env = {"BATCHLINE_USER": user, "BATCHLINE_PASSWORD": PASSWORD}
    return CliRunner().invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env)


def test_materials_lots_and_equipment_from_a_shell(runtime, maint):
    r = invoke(
        runtime, "qa", "materials", "add", "BUF-TRIS", "--name", "Tris buffer", "--unit", "L", "--kind", "buffer"
    )
    assert r.exit_code == 0, r.output
    r = invoke(
        runtime, "sv", "lots", "add", "TRIS-1", "--material", "BUF-TRIS", "--quantity", "500", "--expires", "2099-01-31"
    )
    assert r.exit_code == 0, r.output
    r = invoke(runtime, "qa", "lots", "status", "TRIS-1", "released", "--reason", "CoA reviewed")
    assert r.exit_code == 0, r.output
    r = invoke(runtime, "op", "--json", "lots", "list", "--status", "released")
    assert r.exit_code == 0, r.output
    (lot,) = json.loads(r.output)
    assert (lot["lot_id"], lot["status"], lot["quantity"]) == ("TRIS-1", "released", 500.0)
    r = invoke(
        runtime, "sv", "lots", "update", "TRIS-1", "--quantity", "420", "--reason", "used 80 L", "--version", "1"
    )
    assert r.exit_code == 0, r.output
    r = invoke(runtime, "sv", "equipment", "add", "MV-100", "--class", "mixing_vessel", "--name", "100 L mixer")
    assert r.exit_code == 0, r.output
    r = invoke(runtime, "mia", "equipment", "status", "MV-100", "maintenance", "--reason", "motor noise")
    assert r.exit_code == 0, r.output
    r = invoke(runtime, "op", "--json", "equipment", "list")
    assert json.loads(r.output)[0]["status"] == "maintenance"


def test_an_operator_changes_nothing_from_a_shell(runtime):
    r = invoke(runtime, "op", "materials", "add", "BUF-X", "--name", "X", "--unit", "L")
    assert r.exit_code == 2 and "forbidden" in r.output
    r = invoke(runtime, "op", "--json", "materials", "list")
    assert json.loads(r.output) == []


def test_a_bad_value_is_an_error_line_not_a_traceback(runtime):
    r = invoke(runtime, "qa", "materials", "add", "BAD ID", "--name", "X", "--unit", "L")
    assert r.exit_code == 2 and "material_id_invalid" in r.output and "Traceback" not in r.output
    r = invoke(runtime, "qa", "materials", "add", "M-1", "--name", "X", "--unit", "furlong")
    assert r.exit_code == 2 and "unit_invalid" in r.output
