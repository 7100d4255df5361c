"""The real `rollout-control` command as a child process, as a pipeline runs it.

    result = run_cli("status", "--json", env=cli_env(url, token))
    assert result.code == 0, result.stderr
    result.json()

The command line is the console script pyproject.toml declares, so a wrong entry point fails
every CLI test, not only the one that reads pyproject.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def console_script() -> list[str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["rollout-control"].partition(":")
    code = (
        f"import sys; sys.argv[0] = 'rollout-control'; "
        f"from {module} import {function}; sys.exit({function}())"
    )
    return [sys.executable, "-c", code]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def cli_env(
    home: Path, url: str | None = None, token: str | None = None, *, language: str = "C.UTF-8"
) -> dict[str, str]:
    """A user whose config directory is under ``home``, nothing stored yet, in the locale
    ``language`` (``LANG``; the C locale unless given, whatever the machine running the tests
    has)."""
    env = {"XDG_CONFIG_HOME": str(home / "config"), "HOME": str(home), "COLUMNS": "200"}
    env.update(LANG=language, LC_ALL="", LC_MESSAGES="")
    if url:
        env["ROLLOUT_CONTROL_URL"] = url
    if token:
        env["ROLLOUT_CONTROL_TOKEN"] = token
    return env


def run_cli(*args: str, env: dict[str, str], input: str = "", timeout: float = 120) -> CliResult:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_CONTROL_")}
    environment.update(env)
    completed = subprocess.run(
        [*console_script(), *args],
        cwd=ROOT,
        env=environment,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)
