"""What every command shares: the server and token it talks to, and the options scripts use."""

from __future__ import annotations

import os
from functools import cached_property

import click

from . import config
from .client import Client
from .errors import ERROR, CliError, Refused
from .words import _


class Session:
    """The server URL (`--url`, else ROLLOUT_CONTROL_URL, else the one stored by `login`) and the
    token (ROLLOUT_CONTROL_TOKEN, else the stored one — sent only to the server it was stored
    for, so `--url` pointing elsewhere never hands it to another host)."""

    def __init__(self, url: str | None, timeout: float) -> None:
        self.url_option = url
        self.timeout = timeout

    @cached_property
    def stored(self) -> dict:
        return config.load()

    @property
    def url(self) -> str:
        url = self.url_option or self.stored.get("url")
        if not url:
            raise CliError(
                _(
                    "no server: pass --url, set {variable} or run `rollout-control login`",
                    variable=config.URL_VARIABLE,
                )
            )
        return url.rstrip("/")

    @property
    def token(self) -> str:
        token = os.environ.get(config.TOKEN_VARIABLE, "").strip()
        if token:
            return token
        stored_url = (self.stored.get("url") or "").rstrip("/")
        if self.stored.get("token") and stored_url == self.url:
            return self.stored["token"]
        raise CliError(
            _(
                "not logged in to {url}: run `rollout-control login` or set {variable}",
                url=self.url,
                variable=config.TOKEN_VARIABLE,
            )
        )

    @cached_property
    def client(self) -> Client:
        return Client(self.url, self.token, timeout=self.timeout)


pass_session = click.make_pass_decorator(Session)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's JSON instead of tables (for scripts)."
)
yes_option = click.option(
    "--yes", "-y", is_flag=True, help="Do not ask to confirm (for scripts and incidents)."
)
wait_option = click.option(
    "--wait", is_flag=True, help="Wait until the edge reports the change in effect."
)


def timeout_option(default: float):
    return click.option(
        "--timeout",
        "wait_timeout",
        type=click.FloatRange(min=1),
        default=default,
        show_default=True,
        help="Seconds to wait at most with --wait.",
    )


def confirm(question: str, *, yes: bool) -> None:
    """Asks on stderr (stdout stays the command's output); "no" ends the command with exit 1,
    no answer at all (a script without --yes) with exit 2."""
    if yes:
        return
    try:
        answer = click.confirm(question, err=True)
    except click.Abort:
        raise CliError(
            _("no answer to the confirmation: pass --yes to act without asking"), exit_code=ERROR
        ) from None
    if not answer:
        raise Refused(_("nothing was done"))
