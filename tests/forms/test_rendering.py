"""Rendering data for server-rendered forms: order, limits as text, read-only calculated fields."""

import ast
import json
from pathlib import Path

from forms import render_data
from tests.forms.builders import make_form, number


def test_render_data_for_sample_form(inoculation_source):
    items = render_data(inoculation_source)
    assert [i["item"] for i in items[:3]] == ["instructions", "group", "field"]
    assert items[0]["markdown"].startswith("# Inoculate")
    fields = {i["key"]: i for i in items if i["item"] == "field"}
    ph = fields["ph"]
    assert ph["limits"] == {"hard": "6.50 to 7.60", "action": "6.80 to 7.30", "alert": "6.90 to 7.20"}
    assert ph["limit_values"]["alertLow"] == "6.90"
    assert ph["input"]["step"] == "0.01" and ph["input"]["min"] == "6.50"
    assert ph["required"] and ph["critical"] and not ph["readonly"]
    temperature = fields["temperature"]
    assert temperature["unit"] == "°C"
    assert temperature["limits"]["hard"] == "30.0 to 40.0 °C"
    volume = fields["inoculum_volume"]
    assert volume["limits"] == {"hard": "0.0 to 400.0 L"}
    seeding = fields["seeding_density"]
    assert seeding["readonly"] is True
    assert seeding["calculation"] == "seed_vcd * inoculum_volume / working_volume"
    assert seeding["limits"]["action"] == "0.300 to 0.700 10^6 cells/mL"
    assert fields["transfer_method"]["options"] == [
        {"value": "pressure", "label": "Closed transfer line (pressure)"},
        {"value": "pump", "label": "Peristaltic pump"},
    ]
    assert fields["media_lot"]["type"] == "materialLot"
    assert fields["media_lot"]["material"] == "MED-CHO-CD-001"
    assert fields["comments"]["input"]["maxlength"] == 10_000
    assert fields["inoculation_time"]["subtype"] == "datetime"
    json.dumps(items)  # safe to hand to a template or an API


def test_one_sided_limits():
    items = render_data(make_form(number("a", unit="g", hardMin=1), number("b", hardMax="2.5", decimals=2)))
    assert items[0]["limits"] == {"hard": "at least 1 g"}
    assert items[1]["limits"] == {"hard": "at most 2.50"}


def test_text_is_raw_for_the_template_to_escape():
    items = render_data(make_form({"type": "text", "text": "<script>x</script>"}, number("a", "<b>A</b>")))
    assert items[0]["markdown"] == "<script>x</script>"
    assert items[1]["label"] == "<b>A</b>"


def test_forms_package_imports_no_upper_layer():
    forbidden = {"engine", "web", "analytics", "integrations"}
    package = Path(__file__).resolve().parents[2] / "forms"
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
