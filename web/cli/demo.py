"""``batchline demo``: set the demo plant up (``web.demo``), print its people and a
"try this" block a newcomer can paste into another shell, then serve it with a job
worker and the plant around it (``web.demo_plant``: the OPC UA equipment simulator, the
partner ERP that sends a process order, the partner LIMS, the QMS)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .context import as_json, current, runtime
from .output import json_option, show
from .root import main
from .serve import check_port, listen_address, run_server, start_worker, startup_notes

#: the demo person the "try this" block acts as (an operator: the demo batch waits for operator tasks)
TRY_AS = "op.anna"


def _program() -> str:
    """How this shell started ``batchline`` (``.venv/bin/batchline`` under ``make demo``)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "batchline" and os.sep in argv0:
        path = Path(argv0)
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return "batchline"


def try_this(rt, batch_id: str, url: str | None) -> list[str]:
    """The exact commands to paste into another shell, in this directory."""
    from web import demo as plant

    _name, _roles, password = plant.PEOPLE[TRY_AS]
    prog = _program()
    lines = []
    database = os.environ.get("BATCHLINE_DATABASE_URL")
    config = current().config_file
    if database:
        lines.append(f"export BATCHLINE_DATABASE_URL={database}")
    if config:
        lines.append(f"export BATCHLINE_CONFIG={config}")
    lines += [
        f"export BATCHLINE_USER={TRY_AS} BATCHLINE_PASSWORD={password}",
        f"{prog} batch tasks {batch_id}",
    ]
    first = plant.first_task(rt)
    if first is not None:
        task, values = first
        data = shlex.quote(json.dumps(values, ensure_ascii=False))
        lines.append(f"{prog} batch complete {batch_id} {task} --data {data}")
    else:
        lines.append(f"{prog} batch complete {batch_id} TASK --data '{{...the form values as JSON...}}'")
    lines += [f"{prog} batch steps {batch_id}", f"{prog} batch exceptions {batch_id}"]
    if url:
        lines.append(f"open {url} and log in as {TRY_AS} / {password}")
    else:
        lines.append(f"{prog} serve --with-worker   # then open the address it prints")
    return lines


@main.command("demo")
@click.option("--host", help="Address to listen on (default: settings host).")
@click.option("--port", type=int, help="Port (default: settings port).")
@click.option("--no-serve", is_flag=True, help="Set the demo plant up and exit.")
@click.option(
    "--equipment-port", type=int, default=4840, show_default=True,
    help="Port of the OPC UA equipment simulator (another free port when it is taken).",
)  # fmt: skip
@json_option
def demo(host, port, no_serve, equipment_port):
    """Set up the demo plant (people, lots, equipment, the workflow library, a running mAb
    batch) on the configured database, then serve the web app with a job worker."""
    from web import demo as plant
    from web import demo_erp, demo_plant
    from web.app import create_app

    rt = runtime()
    host, port = listen_address(rt, host, port)
    if not no_serve:
        check_port(host, port)  # before a minute of setting up, not after

    def note(line: str) -> None:
        click.echo(line, err=as_json())  # progress stays out of the JSON answer

    note("applying database migrations ...")
    rt.create_schema()
    note("loading the workflow library and the demo plant ...")
    info = demo_plant.setup(rt)
    plant.connect_simulators(rt)
    url = None if no_serve else f"http://{host}:{port}/"
    lines = try_this(rt, info["batch"], url)
    if as_json():
        show(_answer(info, plant.PEOPLE, url, lines))
    else:
        _print_plant(info, plant.PEOPLE)
    if no_serve:
        if not as_json():
            _print_try_this(lines)
        return
    # the demo is served over plain HTTP on this computer: its session cookie cannot be Secure
    rt.settings = replace(rt.settings, demo=True)
    app = create_app(runtime=rt)
    startup_notes(app)
    stop = threading.Event()
    start_worker(rt, stop)
    from web import demo_qms  # its own process: answers deviation requests with DEV-YYYY-NNNN

    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    # the equipment simulator, partner ERP (sends the demo process order once we listen) and LIMS
    systems = demo_plant.start(rt, f"http://{local}:{port}", equipment_port=equipment_port)
    qms, qms_port = demo_qms.start(rt, f"http://{local}:{port}")

    def announce() -> None:
        for line in systems.lines():
            note(line)
        note(f"{plant.DEMO_BATCH}'s production phase runs on the simulator (watch it: batchline batch steps)")
        note(f"the ERP sends process order {demo_erp.DEMO_ORDER} once the server listens: a new batch of that id")
        note(f"demo QMS: http://127.0.0.1:{qms_port}/deviations (answers deviation requests as DEV-YYYY-NNNN)")
        note(f"Batchline demo: {url}  (API: {url}api/docs)")
        if not as_json():
            _print_try_this(lines)

    try:
        run_server(app, host, port, announce)
    finally:
        stop.set()
        systems.stop()
        qms.terminate()
        qms.wait(timeout=10)


def _print_plant(info: dict[str, Any], people: dict[str, Any]) -> None:
    click.echo(f"{len(info['recipes'])} library recipes approved; batch {info['batch']} is running")
    click.echo("demo people (user id / password — demo only):")
    for username, (name, roles, password) in people.items():
        click.echo(f"  {username:<10} {password:<18} {name} ({', '.join(roles)})")
    click.echo("scan these: " + ", ".join(list(info["lots"].values()) + list(info["equipment"].values())))


def _print_try_this(lines: list[str]) -> None:
    click.echo("")
    click.echo("try this (in another shell, in this directory):")
    for line in lines:
        click.echo(f"  {line}")


def _answer(info: dict[str, Any], people: dict[str, Any], url: str | None, lines: list[str]) -> dict[str, Any]:
    return {
        **info,
        "people": [
            {"username": u, "name": name, "roles": roles, "password": password}
            for u, (name, roles, password) in people.items()
        ],
        "url": url,
        "try": lines,
    }
