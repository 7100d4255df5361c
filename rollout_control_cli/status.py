"""`status`: what each environment is set to (desired, KV, edge), drift, the phase, and what
waits for a person; `--watch` keeps it on screen."""

from __future__ import annotations

import json
import time

import click

from . import output
from .environments import ENV_HELP, environment_path
from .session import Session, json_option, pass_session
from .waiting import read_through_throttling
from .words import _


@click.command(epilog=ENV_HELP)
@click.argument("env", required=False)
@click.option("--watch", is_flag=True, help="Keep showing it, refreshed, until Ctrl-C.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=5,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@json_option
@pass_session
def status(session: Session, env: str | None, watch: bool, interval: float, as_json: bool):
    """Show every environment, or one ENV in detail."""
    client = session.client
    path = environment_path(client, env) if env else "/environments"

    def read():
        return client.get(path)

    if not watch:
        data = read()
        output.print_json(data) if as_json else output.show(render(data))
        return
    try:
        _watch(read, interval, as_json)
    except KeyboardInterrupt:
        pass


def _watch(read, interval: float, as_json: bool) -> None:
    """On a terminal the view is redrawn in place; into a pipe or a CI log each state is printed
    once, when it changes (JSON: one document a line)."""
    if output.console().is_terminal and not as_json:
        from rich.live import Live

        with Live(render(read()), console=output.console(), auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(render(read_through_throttling(read)), refresh=True)
    last = None
    while True:
        data = read_through_throttling(read)
        if data != last:
            if as_json:
                click.echo(json.dumps(data, ensure_ascii=False))
            else:
                output.say(f"— {time.strftime('%H:%M:%S')}")
                output.show(render(data))
            last = data
        time.sleep(interval)


def render(data):
    if isinstance(data, list):
        return overview(data)
    return detail(data)


def overview(environments: list[dict]):
    rows = [
        (
            f"{entry['service']}/{entry['name']}",
            _desired(entry),
            output.settings(entry.get("kv")),
            output.settings(entry.get("edge")),
            (entry.get("drift") or {}).get("state"),
            _phase(entry.get("current_phase")),
            len(entry.get("pending_requests") or []) + len(entry.get("open_changes") or []),
        )
        for entry in environments
    ]
    columns = (
        _("Environment"),
        _("Desired"),
        _("KV"),
        _("Edge"),
        _("Drift"),
        _("Phase"),
        _("Waiting"),
    )
    return output.table(None, columns, rows)


def detail(entry: dict):
    from rich.console import Group

    drift = entry.get("drift") or {}
    kv, edge = entry.get("kv") or {}, entry.get("edge") or {}
    facts = [
        (_("Desired"), _desired(entry), ""),
        (_("KV"), output.settings(kv or None), _read(kv)),
        (_("Edge"), output.settings(edge or None), _read(edge)),
        (_("Drift"), drift.get("state"), drift.get("detail")),
        (_("Phase"), _phase(entry.get("current_phase")), _window(entry.get("current_phase"))),
    ]
    parts = [output.facts(f"{entry['service']}/{entry['name']}  {entry.get('url') or ''}", facts)]
    requests = entry.get("pending_requests") or []
    if requests:
        parts.append(
            output.table(
                _("Waiting for a second person (rollout-control approve ID / reject ID)"),
                (_("Request"), _("Percent"), _("Tag"), _("Requested by"), _("At"), _("Reason")),
                [
                    (
                        r["id"],
                        f"{r['percent']}%",
                        r.get("tag"),
                        r.get("requested_by"),
                        output.when(r.get("requested_at")),
                        r.get("reason"),
                    )
                    for r in requests
                ],
            )
        )
    changes = entry.get("open_changes") or []
    if changes:
        parts.append(
            output.table(
                _("Changes not yet in effect"),
                (_("Change"), _("Kind"), _("Version"), _("State"), _("Requested at")),
                [
                    (
                        c["id"],
                        c.get("kind"),
                        c.get("version"),
                        c.get("state"),
                        output.when(c.get("requested_at")),
                    )
                    for c in changes
                ],
            )
        )
    return Group(*parts)


def _desired(entry: dict) -> str:
    desired = entry.get("desired")
    if not desired:
        return _("nothing desired yet")
    return f"{output.settings(desired)} (v{desired.get('version')})"


def _phase(phase: dict | None) -> str:
    if not phase:
        return "—"
    return f"{phase.get('phase')} {phase.get('percent')}% {phase.get('state')}"


def _window(phase: dict | None) -> str:
    if not phase or not phase.get("window_ends_at"):
        return ""
    return _("window ends {when}", when=output.when(phase["window_ends_at"]))


def _read(value: dict) -> str:
    return _("read {when}", when=output.when(value.get("read_at"))) if value else ""
