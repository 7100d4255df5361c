"""Phases and decisions: start the next phase of ENV's plan (after its pre-flight), show a
phase run or a decision."""

from __future__ import annotations

import click

from . import output
from .environments import ENV_HELP, environment_path
from .session import Session, confirm, json_option, pass_session, yes_option
from .words import N_, _


@click.group()
def phase():
    """Phases of a rollout."""


@phase.command(epilog=ENV_HELP)
@click.argument("env")
@click.option("--reason", default="", help="Why now: recorded in the audit trail.")
@click.option("--tag", help="The phase you mean to start: refused if it is not the next one.")
@click.option(
    "--outside-window",
    "override",
    default="",
    metavar="REASON",
    help="Start outside the deploy window (Tue-Thu 10:00-14:00 UTC), for this reason.",
)
@yes_option
@json_option
@pass_session
def start(session: Session, env, reason, tag, override, yes, as_json):
    """Start the next phase of ENV's plan. The pre-flight checklist is shown first; the server
    refuses the start while it is incomplete. A raise waits for a second person's approval."""
    client = session.client
    path = environment_path(client, env)
    if not yes:
        preflight = client.get(f"{path}/preflight")
        output.show(
            output.table(
                _("Pre-flight"),
                (_("Item"), _("OK"), _("Detail")),
                [(i.get("name"), i.get("ok"), i.get("detail")) for i in preflight.get("items", [])],
            )
        )
        if preflight.get("refusal"):
            output.say(_("The server will refuse: {refusal}", refusal=preflight["refusal"]))
        question = _(
            "{environment}: start {phase} at {percent}%?",
            environment=path.removeprefix("/environments/"),
            phase=preflight.get("phase"),
            percent=preflight.get("percent"),
        )
        confirm(question, yes=yes)
    body = {"reason": reason, "tag": tag, "window_override_reason": override}
    started = client.post(f"{path}/phases/start", {k: v for k, v in body.items() if v is not None})
    if as_json:
        output.print_json(started)
        return
    output.say(
        _(
            "Phase {phase} at {percent}%: phase run {id}.",
            phase=started.get("phase"),
            percent=started.get("percent"),
            id=started["id"],
        )
    )
    request = started.get("request")
    if request:
        output.say(
            _(
                "The raise waits for a second person: rollout-control approve {id}",
                id=request["id"],
            )
        )


@click.group()
def decision():
    """GO / NO-GO / HOLD decisions."""


def show_command(group: click.Group, route: str, title: str, help: str) -> None:
    """`<group> show ID`: the object at /<route>/ID, as facts or as JSON."""

    @group.command("show", help=help)
    @click.argument("object_id", metavar="ID")
    @json_option
    @pass_session
    def show(session: Session, object_id, as_json):
        _show(session.client.get(f"/{route}/{object_id}"), _(title, id=object_id), as_json)


show_command(
    phase,
    "phases",
    N_("Phase run {id}"),
    "Show the phase run ID: its window and recommendation.",
)
show_command(
    decision,
    "decisions",
    N_("Decision {id}"),
    "Show the decision ID: verdict, sign-offs, effect.",
)


def _show(document: dict, title: str, as_json: bool) -> None:
    if as_json:
        output.print_json(document)
        return
    rows = []
    for key, value in document.items():
        if isinstance(value, list):
            rows.append((key, _("{count} entries", count=len(value)), ""))
            rows.extend(("", _line(item), "") for item in value)
        elif isinstance(value, str) and value.endswith("Z") and "T" in value:
            rows.append((key, output.when(value), ""))
        else:
            rows.append((key, _line(value), ""))
    output.show(output.facts(title, rows))


def _line(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {output.text(v)}" for k, v in value.items())
    return output.text(value)
