"""The evaluation command runs end to end and writes its section of the docs."""

from click.testing import CliRunner

from analytics.cli import END, START, analytics


def test_evaluate_command_rewrites_only_its_section(tmp_path):
    out = tmp_path / "analytics.md"
    out.write_text(f"# Title\n\nhand-written\n\n{START}\nOLD-CONTENT\n{END}\n\ntail\n", encoding="utf-8")
    result = CliRunner().invoke(analytics, ["evaluate", "--seeds", "1", "--faulty", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nhand-written") and text.rstrip().endswith("tail")
    assert "OLD-CONTENT" not in text and "| PCA T²/SPE (time series, EWMA) |" in text
    assert (tmp_path / "img" / "analytics-detection.png").stat().st_size > 1000
    # duration faults x2 / x0.5 are the easy case: the duration monitor must see them
    row = next(line for line in text.splitlines() if line.startswith("| Duration monitor"))
    slow, rushed = (int(c.strip().rstrip("%")) for c in row.split("|")[8:10])
    assert slow >= 90 and rushed >= 90


def test_python_example_in_docs_runs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "analytics.md").read_text(encoding="utf-8")
    code = text.split("## From Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(code, "docs/analytics.md", "exec"), namespace)
    assert (
        namespace["same"].predict(namespace["Xnew"]).tolist()
        == namespace["monitor"].predict(namespace["Xnew"]).tolist()
    )
