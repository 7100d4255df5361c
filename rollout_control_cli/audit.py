"""`audit`: who did what, when and why, newest first, from the tamper-evident audit trail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from . import output
from .session import Session, json_option, pass_session
from .words import _

PAGE_SIZE = 200
AGO = re.compile(r"^(\d+)\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Moment(click.ParamType):
    """An ISO 8601 date or time (without a zone: this machine's), or a time ago: 30m, 2h, 7d, 1w."""

    name = "moment"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        ago = AGO.match(value.strip())
        if ago:
            return datetime.now(UTC) - timedelta(**{UNITS[ago[2]]: int(ago[1])})
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            self.fail(
                _(
                    "{value} is neither a date/time (2025-11-12T14:30) nor 30m, 2h, 7d",
                    value=repr(value),
                ),
                param,
            )
        return moment if moment.tzinfo else moment.astimezone()


@click.command()
@click.option("--since", type=Moment(), help="From this moment (ISO 8601, or 30m, 2h, 7d ago).")
@click.option("--until", type=Moment(), help="Up to this moment.")
@click.option("--env", "environment", help="Only this environment (SERVICE/ENVIRONMENT).")
@click.option("--action", help="Only this action (e.g. emergency_stop).")
@click.option("--actor", help="Only this person or rule.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Entries at most."
)
@json_option
@pass_session
def audit(session: Session, since, until, environment, action, actor, limit, as_json):
    """The audit trail, newest first."""
    client = session.client
    entries, cursor = [], None
    while len(entries) < limit:
        page = client.get(
            "/audit",
            since=_iso(since),
            until=_iso(until),
            environment=environment,
            action=action,
            actor=actor,
            cursor=cursor,
            limit=min(PAGE_SIZE, limit - len(entries)),
        )
        entries.extend(page.get("entries") or [])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    entries = entries[:limit]
    if as_json:
        output.print_json(entries)
        return
    output.show(
        output.table(
            None,
            (
                _("At"),
                _("Actor"),
                _("Action"),
                _("Environment"),
                _("Outcome"),
                _("Reason"),
                _("Detail"),
            ),
            [
                (
                    output.when(e.get("at")),
                    e.get("actor"),
                    e.get("action"),
                    e.get("environment"),
                    e.get("outcome"),
                    e.get("reason"),
                    e.get("detail"),
                )
                for e in entries
            ],
        )
    )
    if cursor:
        output.say(_("(more than {limit} entries: raise --limit or narrow --since)", limit=limit))


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
