"""Who you are to the server: `login` stores a token (made on the dashboard's "Your settings →
API tokens" page) after checking it, `logout` forgets it, `whoami` asks the server."""

from __future__ import annotations

import sys

import click

from . import config, output
from .client import Client
from .errors import CliError
from .session import Session, json_option, pass_session


@click.command()
@click.option("--url", "login_url", help="The dashboard's address, e.g. https://rollout.example.")
@pass_session
def login(session: Session, login_url):
    """Check a token and store it with the server's address for later commands (file mode 600).

    The token is asked for without echo; a script pipes it in on stdin. In CI prefer the
    ROLLOUT_CONTROL_TOKEN variable and --url / ROLLOUT_CONTROL_URL: then nothing is stored."""
    url = (login_url or session.url_option or session.stored.get("url") or "").rstrip("/")
    if not url:
        url = click.prompt("Dashboard URL", err=True).strip().rstrip("/")
    token = _read_token()
    me = Client(url, token, timeout=session.timeout).get("/whoami")
    path = config.save({"url": url, "token": token})
    output.say(f"Logged in to {url} as {_who(me)}.")
    output.say(f"Token stored in {path} (readable by you only).")


@click.command()
def logout():
    """Forget the stored token (revoke it on the dashboard's API tokens page as well)."""
    path = config.config_path()
    if config.forget():
        output.say(f"Removed {path}. Revoke the token on the dashboard if it may have leaked.")
    else:
        output.say("No token was stored.")


@click.command()
@json_option
@pass_session
def whoami(session: Session, as_json):
    """Who the server takes you for: user, token, roles and permissions."""
    me = session.client.get("/whoami")
    if as_json:
        output.print_json(me)
        return
    output.say(f"{_who(me)} at {session.url}")
    output.say(f"Roles: {', '.join(me.get('roles') or []) or 'none'}")
    output.say(f"Permissions: {', '.join(me.get('permissions') or []) or 'none'}")


def _read_token() -> str:
    if sys.stdin.isatty():
        token = click.prompt("API token", hide_input=True, err=True)
    else:
        token = sys.stdin.readline()
    token = token.strip()
    if not token:
        raise CliError("no token given: paste the token shown once on the API tokens page")
    return token


def _who(me: dict) -> str:
    token = me.get("token") or {}
    expires = token.get("expires_at")
    return f"{me.get('user')} (token {token.get('name')!r}, {token.get('kind')}, " + (
        f"expires {output.when(expires)})" if expires else "never expires)"
    )
