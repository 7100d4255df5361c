"""The CLI against servers that fail in ways the real API is not made to: down, silent, a
proxy's error page, a redirect, throttling. Each ends with exit 2 and a message that says what
happened. The commands against the real API: test_cli_commands.py."""

import ast
import json
import socket
import subprocess
import sys

import pytest

from rollout_control_cli.client import accept_language
from tests.support.cli import ROOT, cli_env, run_cli
from tests.support.webhooks import WebhookReceiver

PROBLEM = {"Content-Type": "application/problem+json"}
SERVER_PACKAGES = {
    "django",
    "config",
    "rollout",
    "monitoring",
    "metrics",
    "outbox",
    "integrations",
    "edge_standin",
    "api",
    "tests",
}


@pytest.fixture
def api():
    with WebhookReceiver() as server:
        server.base = server.url.split("/services/")[0]
        yield server


def problem(status, title, detail, **extra):
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    )


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "de_DE.UTF-8"}, "de"),
        ({"LANG": "en_GB.UTF-8", "LC_MESSAGES": "de_AT"}, "de"),
        ({"LANG": "de_DE.UTF-8", "LC_ALL": "C.UTF-8"}, None),
        ({"LANG": "de_DE.UTF-8", "LC_ALL": ""}, "de"),
        ({"LANG": "sr_RS@latin"}, "sr"),
        ({"LANG": "POSIX"}, None),
        ({}, None),
    ],
)
def test_the_language_asked_of_the_server_is_the_environment_s(environ, language):
    assert accept_language(environ) == language


def test_help_names_every_exit_code(tmp_path):
    result = run_cli("--help", env=cli_env(tmp_path))

    assert result.code == 0
    assert "Exit codes:" in result.stdout
    for code in ("0  done", "1  refused by the server", "2  usage error"):
        assert code in result.stdout


def test_the_client_imports_nothing_of_the_server():
    for path in sorted((ROOT / "rollout_control_cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & SERVER_PACKAGES, (path, names)
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rollout_control_cli.main; print(' '.join(sorted(sys.modules)))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not {name.split(".")[0] for name in loaded} & SERVER_PACKAGES


def test_a_server_that_is_down_is_an_error_naming_its_address(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed once the block ends

    result = run_cli("status", env=cli_env(tmp_path, url, "rc_x_y"))

    assert result.code == 2
    assert f"Error: cannot reach {url}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_server_that_never_answers_ends_after_the_timeout(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections are accepted by the kernel and never answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        result = run_cli(
            "--http-timeout",
            "0.5",
            "stop",
            "svc/production",
            "--reason",
            "x",
            "--yes",
            env=cli_env(tmp_path, url, "rc_x_y"),
        )

    assert result.code == 2
    assert "no answer from" in result.stderr
    assert "may or may not have happened" in result.stderr


def test_an_error_page_that_is_not_problem_json_is_shown(api, tmp_path):
    api.answer(
        502, "<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"}
    )

    result = run_cli("status", env=cli_env(tmp_path, api.base, "rc_x_y"))

    assert result.code == 2
    assert "Bad Gateway (HTTP 502): <html><body><h1>502 Bad Gateway" in result.stderr


def test_a_redirect_asks_whether_the_address_is_the_dashboard(api, tmp_path):
    api.answer(302, "", {"Location": "/accounts/login/"})

    result = run_cli("status", env=cli_env(tmp_path, api.base, "rc_x_y"))

    assert result.code == 2
    assert "redirect to /accounts/login/: is it the dashboard's address?" in result.stderr


def test_throttling_says_when_to_try_again(api, tmp_path):
    api.answer(
        429, problem(429, "Too Many Requests", "Slow down."), {**PROBLEM, "Retry-After": "7"}
    )

    result = run_cli("status", env=cli_env(tmp_path, api.base, "rc_x_y"))

    assert result.code == 2
    assert "Too Many Requests (HTTP 429): Slow down." in result.stderr
    assert "try again in 7 s" in result.stderr


def test_without_a_server_it_says_how_to_name_one(tmp_path):
    result = run_cli("status", env=cli_env(tmp_path))

    assert result.code == 2
    assert "no server: pass --url, set ROLLOUT_CONTROL_URL or run `rollout-control login`" in (
        result.stderr
    )


def test_without_a_token_it_says_how_to_log_in(api, tmp_path):
    result = run_cli("status", env=cli_env(tmp_path, api.base))

    assert result.code == 2
    assert f"not logged in to {api.base}" in result.stderr
    assert api.received == []
