"""Who you are to the server: `login` stores a token (made on the dashboard's "Your settings →
API tokens" page) after checking it, `logout` forgets it, `whoami` asks the server."""

from __future__ import annotations

import sys

import click

from . import config, output
from .client import Client
from .errors import CliError
from .session import Session, json_option, pass_session
from .words import _


@click.command()
@click.option("--url", "login_url", help="The dashboard's address, e.g. https://rollout.example.")
@pass_session
def login(session: Session, login_url):
    """Check a token and store it with the server's address for later commands (file mode 600).

    The token is asked for without echo; a script pipes it in on stdin. In CI prefer the
    ROLLOUT_CONTROL_TOKEN variable and --url / ROLLOUT_CONTROL_URL: then nothing is stored."""
    url = (login_url or session.url_option or session.stored.get("url") or "").rstrip("/")
    if not url:
        url = click.prompt(_("Dashboard URL"), err=True).strip().rstrip("/")
    token = _read_token()
    me = Client(url, token, timeout=session.timeout).get("/whoami")
    path = config.save({"url": url, "token": token})
    output.say(_("Logged in to {url} as {who}.", url=url, who=_who(me)))
    output.say(_("Token stored in {path} (readable by you only).", path=path))


@click.command()
def logout():
    """Forget the stored token (revoke it on the dashboard's API tokens page as well)."""
    path = config.config_path()
    if config.forget():
        output.say(
            _("Removed {path}. Revoke the token on the dashboard if it may have leaked.", path=path)
        )
    else:
        output.say(_("No token was stored."))


@click.command()
@json_option
@pass_session
def whoami(session: Session, as_json):
    """Who the server takes you for: user, token, roles and permissions."""
    me = session.client.get("/whoami")
    if as_json:
        output.print_json(me)
        return
    output.say(_("{who} at {url}", who=_who(me), url=session.url))
    output.say(_("Roles: {roles}", roles=", ".join(me.get("roles") or []) or _("none")))
    permissions = ", ".join(me.get("permissions") or []) or _("none")
    output.say(_("Permissions: {permissions}", permissions=permissions))


def _read_token() -> str:
    if sys.stdin.isatty():
        token = click.prompt(_("API token"), hide_input=True, err=True)
    else:
        token = sys.stdin.readline()
    token = token.strip()
    if not token:
        raise CliError(_("no token given: paste the token shown once on the API tokens page"))
    return token


def _who(me: dict) -> str:
    token = me.get("token") or {}
    expires = token.get("expires_at")
    words = {"user": me.get("user"), "name": repr(token.get("name")), "kind": token.get("kind")}
    if expires:
        return _(
            "{user} (token {name}, {kind}, expires {when})", when=output.when(expires), **words
        )
    return _("{user} (token {name}, {kind}, never expires)", **words)
