"""``batchline worker`` and ``batchline serve``: the job executor and the web server.

The port is tried before anything says "serving on": ``batchline serve`` while
``make demo`` still held port 5000 used to print "serving on ..." and then a
traceback. A server that cannot start now says why in one line (exit 2).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import tempfile
import threading

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from engine.errors import BatchlineError

from .context import runtime
from .output import fail, json_option, say
from .root import main

ADDRESS_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}


def check_port(host: str, port: int) -> None:
    """Refuse at once when nothing could listen on ``host:port`` (in use, no such address)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise BatchlineError(f"cannot listen on {host}:{port}: {exc}", code="serve_failed") from None
    with socket.socket(family, kind, proto) as probe:
        if os.name != "nt":  # as waitress and werkzeug do: a port with connections in TIME_WAIT is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno in ADDRESS_IN_USE:
                raise BatchlineError(
                    f"{host}:{port} is in use (is the demo still running?)", code="port_in_use"
                ) from None
            raise BatchlineError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", code="serve_failed"
            ) from None


def startup_notes(app) -> None:
    """Where the secret key and the audit key came from (never the keys) and what the
    session cookie needs, on stderr: an operator sees at start-up whether a key file was
    just made. An unusable audit key (too short, a file others can read) stops the start
    here, not with a 503 on the first step."""
    from engine import audit

    rt = app.extensions["batchline"]
    click.echo(f"secret key: {app.extensions['batchline_secret_key_source']}", err=True)
    audit.load_keys(rt.settings)  # AuditKeyError: error [audit_key_*], exit 2
    source = "BATCHLINE_AUDIT_KEY" if rt.settings.audit_key else f"key file {audit.key_path(rt.settings)}"
    click.echo(f"audit key: {source}", err=True)
    if rt.settings.cookie_secure:
        click.echo(
            "session cookie: Secure (sent over HTTPS only: serve the browser UI through a TLS proxy, or set "
            "BATCHLINE_SESSION_COOKIE_SECURE=false on a trusted plain-HTTP network)",
            err=True,
        )
    else:
        click.echo("session cookie: not Secure (plain HTTP: demo or BATCHLINE_SESSION_COOKIE_SECURE=false)", err=True)


def listen_address(rt, host: str | None, port: int | None) -> tuple[str, int]:
    return host or rt.settings.host, port or rt.settings.port


def start_worker(rt, stop: threading.Event) -> threading.Thread:
    """The job worker in a background thread of the server's process (it beats too, so
    ``/api/ready`` of a demo or a one-process install answers 200)."""
    from engine import jobs

    thread = threading.Thread(
        target=jobs.work, args=(rt,), kwargs={"stop": stop, "heartbeat": True}, name="batchline-worker", daemon=True
    )
    thread.start()
    return thread


def install_analytics(rt) -> None:
    """Out-of-trend scoring runs in whichever process works the jobs (optional module)."""
    try:
        from analytics import jobs as analytics_jobs
    except ImportError:  # analytics left out of this install
        return
    analytics_jobs.install(rt)


def install_publishers(rt) -> None:
    """Event subscribers of kind mqtt are delivered by whichever process works the jobs
    (until the ``batchline.publishers`` entry point is installed, registered here too)."""
    try:
        from integrations import mqtt
    except ImportError:  # paho-mqtt left out of this install: mqtt deliveries fail and say why
        return
    mqtt.install(rt)


def apply_connectors_file(rt) -> None:
    """The ``connectors_file`` setting, applied at start (idempotent: engine.connector_file)."""
    if not rt.settings.connectors_file:
        return
    from engine import connector_file

    summary = connector_file.load(rt, rt.settings.connectors_file, by="system")
    say(
        f"connectors file {rt.settings.connectors_file}: added {len(summary['added'])}, "
        f"changed {len(summary['changed'])}",
        {"connectors_file": summary},
    )


def install_integrations(rt) -> None:
    """Equipment over OPC UA (the phase watcher and monitoring jobs) runs in whichever
    process works the jobs (optional module)."""
    try:
        from integrations import opcua
    except ImportError:  # OPC UA left out of this install (asyncua not installed)
        return
    opcua.install(rt)


def run_server(app, host: str, port: int, announce) -> None:
    """Serve ``app`` (waitress when installed, else Flask's threaded server); ``announce()``
    prints the address once the server is about to listen. Start-up failures are one
    ``error [serve_failed]`` line, not a traceback."""
    try:
        try:
            import waitress
        except ImportError:
            click.echo("waitress is not installed: using Flask's development server", err=True)
            announce()
            app.run(host=host, port=port, threaded=True)
        else:
            announce()
            waitress.serve(app, host=host, port=port, threads=8)
    except OSError as exc:
        if exc.errno in ADDRESS_IN_USE:
            fail("port_in_use", f"{host}:{port} is in use (is the demo still running?)")
        fail("serve_failed", f"the server on {host}:{port} stopped: {exc.strerror or exc}")


def stop_on_sigterm(stop: threading.Event) -> None:
    """SIGTERM (systemd, Kubernetes, ``kill``) stops the worker as Ctrl-C does: the job
    running finishes, the claimed ones are given back (``engine.jobs.work``)."""

    def handler(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@main.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs due now, then exit.")
@json_option
def worker(once):
    """Run the job executor: timers, service tasks, event delivery, out-of-trend scoring.
    SIGTERM or Ctrl-C: the running job finishes, claimed jobs are released, then it exits."""
    from engine import jobs

    rt = runtime()
    install_analytics(rt)
    install_publishers(rt)
    apply_connectors_file(rt)
    install_integrations(rt)
    if once:
        ran = jobs.work(rt, idle_exit=True)
        say(f"ran {ran} job(s)", {"jobs": ran})
        return
    stop = threading.Event()
    stop_on_sigterm(stop)
    say("worker running; Ctrl-C or SIGTERM stops", {"worker": "running"})
    ran = jobs.work(rt, stop=stop, heartbeat=True)
    say(f"worker stopped after {ran} job(s)", {"worker": "stopped", "jobs": ran})


def prepare_multiprocess_metrics() -> None:
    """Gunicorn workers count steps into files one scrape adds up (prometheus_client's
    multiprocess mode); a directory of our own unless the operator set one. Emptied at
    start: files of a previous run would be counted again."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="batchline-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


@main.command("serve")
@click.option("--host", help="Address to listen on (default: settings host).")
@click.option("--port", type=int, help="Port (default: settings port).")
@click.option(
    "--with-worker", is_flag=True, help="Also run the job worker in a background thread (not with --workers)."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Production: run gunicorn with this many worker processes (Linux/macOS). Without it: waitress, one process.",
)
@click.option(
    "--threads", type=click.IntRange(1, 256), default=4, show_default=True, help="Threads per worker process."
)
@click.option(
    "--graceful-timeout",
    type=click.IntRange(1, 3600),
    default=30,
    show_default=True,
    help="On SIGTERM, seconds requests in flight get to finish before the server exits.",
)
@json_option
def serve(host, port, with_worker, workers, threads, graceful_timeout):
    """Serve the web app and API: gunicorn with --workers N (production), else waitress
    (or Flask's threaded server when waitress is not installed)."""
    from web.app import create_app

    if workers and with_worker:
        fail("usage", "--with-worker runs in one process only: run `batchline worker` beside `serve --workers N`")
    rt = runtime()
    apply_connectors_file(rt)
    host, port = listen_address(rt, host, port)
    check_port(host, port)
    if workers:
        prepare_multiprocess_metrics()
    try:
        app = create_app(runtime=rt)
    except (BatchlineError, OperationalError, ProgrammingError):
        raise  # the batchline command says these in its own words
    except Exception as exc:  # a start-up failure is one line, not a traceback
        fail("serve_failed", f"the web app could not start: {type(exc).__name__}: {exc}")
    startup_notes(app)
    url = f"http://{host}:{port}"
    if workers:
        serve_gunicorn(rt, host, port, workers, threads, graceful_timeout, url)
        return
    stop = threading.Event()
    if with_worker:
        start_worker(rt, stop)
    try:
        run_server(app, host, port, lambda: say(f"serving on {url}", {"url": url, "worker": with_worker}))
    finally:
        stop.set()


def serve_gunicorn(rt, host: str, port: int, workers: int, threads: int, graceful_timeout: int, url: str) -> None:
    """The production server: gunicorn's master in this process, ``workers`` forked
    gthread workers each building its own app (``web.wsgi``)."""
    try:
        import gunicorn  # noqa: F401

        from web import wsgi
    except ImportError:  # Windows, or an install without gunicorn
        fail("serve_failed", "gunicorn is not available here: run without --workers (waitress)")
    rt.close()  # the check app's connections are not carried into forked workers
    say(
        f"serving on {url} (gunicorn, {workers} worker(s) x {threads} threads; SIGTERM drains within "
        f"{graceful_timeout} s)",
        {"url": url, "workers": workers, "threads": threads, "graceful_timeout": graceful_timeout},
    )
    wsgi.run_gunicorn(wsgi.gunicorn_options(f"{host}:{port}", workers, threads, graceful_timeout))
