"""``batchline serve`` options for the production server, refused before anything starts
when they make no sense; the gunicorn settings they become."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from web import cli, wsgi


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "0"],
        ["--workers", "65"],
        ["--workers", "two"],
        ["--workers", "2", "--threads", "0"],
        ["--workers", "2", "--graceful-timeout", "0"],
        ["--workers", "2", "--graceful-timeout", "nan"],
        ["--workers", "2", "--graceful-timeout", "-5"],
    ],
)
def test_bad_server_options_are_refused(args):
    result = CliRunner().invoke(cli.main, ["serve", *args])
    assert result.exit_code == 2 and "Invalid value" in result.output


def test_workers_and_an_in_process_job_worker_do_not_mix():
    result = CliRunner().invoke(cli.main, ["serve", "--workers", "2", "--with-worker"])
    assert result.exit_code == 2 and "batchline worker" in result.output


def test_gunicorn_settings():
    options = wsgi.gunicorn_options("127.0.0.1:8000", 3, 8, 12.4)
    assert options["workers"] == 3 and options["threads"] == 8
    assert options["worker_class"] == "web.wsgi.DrainingThreadWorker"
    assert options["graceful_timeout"] == 12 and options["timeout"] > options["graceful_timeout"]
    assert options["preload_app"] is False  # each worker process builds its own engine after the fork
    assert options["keepalive"] > 60  # longer than a balancer's idle timeout
    assert options["forwarded_allow_ips"] == ""  # Batchline's proxy setting decides, not gunicorn
