"""Where `login` keeps the server URL and the token between runs: one JSON file in the user's
config directory (`$XDG_CONFIG_HOME/rollout-control/config.json`, usually under ~/.config),
readable by its owner only."""

import json
import os
import stat
from pathlib import Path

import click

from .errors import CliError
from .words import _

APP_NAME = "rollout-control"
URL_VARIABLE = "ROLLOUT_CONTROL_URL"
TOKEN_VARIABLE = "ROLLOUT_CONTROL_TOKEN"
FILE_MODE = 0o600


def config_path() -> Path:
    return Path(click.get_app_dir(APP_NAME)) / "config.json"


def load() -> dict:
    """The stored values, {} before the first `login`."""
    path = config_path()
    try:
        text = path.read_text()
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise CliError(_("cannot read {path}: {error}", path=path, error=error.strerror)) from None
    if mode & 0o077:
        click.echo(
            _(
                "Warning: {path} holds a token and others may read it (mode {mode}); run: "
                "chmod 600 {path}",
                path=path,
                mode=f"{mode:o}",
            ),
            err=True,
        )
    try:
        values = json.loads(text)
    except ValueError:
        raise CliError(
            _("{path} is not JSON: run `rollout-control login` again", path=path)
        ) from None
    return values if isinstance(values, dict) else {}


def save(values: dict) -> Path:
    """Writes the file whole, created with mode 600 and renamed into place, so the token is never
    readable by others, not even for a moment, and a crash never leaves half a file."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)  # the directory is ours alone, whoever made it first
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), FILE_MODE)  # a leftover file keeps its old mode through O_CREAT
        json.dump(values, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)
    return path


def forget() -> bool:
    """Removes the stored token; whether there was one."""
    try:
        config_path().unlink()
    except FileNotFoundError:
        return False
    return True
