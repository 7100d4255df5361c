"""The controls: percent, approve, reject, emergency stop and lift, rollback. Each asks to
confirm naming what will happen (`--yes` for scripts), and may wait until the change is in
effect at the edge (`--wait`)."""

from __future__ import annotations

import click

from . import output
from .client import Client
from .environments import ENV_HELP, environment_path
from .errors import CliError, Refused
from .session import (
    Session,
    confirm,
    json_option,
    pass_session,
    timeout_option,
    wait_option,
    yes_option,
)
from .waiting import poll
from .words import N_, _

reason_option = click.option(
    "--reason", required=True, help="Why: recorded in the audit trail with your name."
)
WAIT_INTERVAL_SECONDS = 0.5
CHANGE_DONE = {"in_effect", "failed", "superseded"}


def env_control(function):
    """A one-person control of ENV: its reason, confirmation, --wait and --json."""
    options = (click.argument("env"), reason_option, yes_option, wait_option)
    options += (timeout_option(600), json_option, pass_session)
    for option in reversed(options):
        function = option(function)
    return click.command(epilog=ENV_HELP)(function)


@click.command(epilog=ENV_HELP)
@click.argument("env")
@click.argument("percent", type=click.IntRange(0, 100))
@click.option("--tag", help="The phase tag to set (default: the current one).")
@reason_option
@click.option(
    "--expected-version",
    type=int,
    help="Act only if the desired config is still at this version (default: the version read "
    "just before asking).",
)
@yes_option
@wait_option
@timeout_option(600)
@json_option
@pass_session
def percent(
    session: Session,
    env,
    percent,
    tag,
    reason,
    expected_version,
    yes,
    wait,
    wait_timeout,
    as_json,
):
    """Set ENV's canary PERCENT. A lower applies at once; a raise waits for a second person's
    approval (`rollout-control approve ID`)."""
    client = session.client
    path = environment_path(client, env)
    current = client.get(path)
    desired = current.get("desired") or {}
    tag = tag or desired.get("tag")
    if not tag:
        raise click.UsageError(_("nothing is desired yet: name the tag with --tag"))
    if expected_version is None:
        expected_version = desired.get("version", 0)
    question = _(
        "{environment}: {old}% → {new}%, tag {tag}",
        environment=_name(current),
        old=desired.get("percent", 0),
        new=percent,
        tag=tag,
    )
    if percent > desired.get("percent", 0):
        question = _("{question} (a raise: a second person must approve it)", question=question)
    confirm(_("{question}. Go ahead?", question=question), yes=yes)
    body = {
        "percent": percent,
        "tag": tag,
        "reason": reason,
        "expected_version": expected_version,
    }
    answer = client.post(f"{path}/percent", body)
    if "request" in answer:
        request = answer["request"]
        if as_json:
            output.print_json(answer)
        else:
            output.say(
                _(
                    "Request {id}: {percent}% {tag} waits for a second person: "
                    "rollout-control approve {id}",
                    id=request["id"],
                    percent=request["percent"],
                    tag=request.get("tag"),
                )
            )
        return
    _changed(client, answer, wait=wait, timeout=wait_timeout, as_json=as_json)


@click.command()
@click.argument("request_id", metavar="ID")
@click.option("--note", "--reason", "note", default="", help="A note for the audit trail.")
@yes_option
@wait_option
@timeout_option(600)
@json_option
@pass_session
def approve(session: Session, request_id, note, yes, wait, wait_timeout, as_json):
    """Approve another person's percent request ID: it is applied at once."""
    client = session.client
    if not yes:
        request = client.get(f"/requests/{request_id}")
        confirm(_("Approve {request}?", request=_request(request)), yes=yes)
    answer = client.post(f"/requests/{request_id}/approve", {"note": note})
    _changed(client, answer, wait=wait, timeout=wait_timeout, as_json=as_json)


@click.command()
@click.argument("request_id", metavar="ID")
@click.option("--note", "--reason", "note", required=True, help="Why: told to the requester.")
@yes_option
@json_option
@pass_session
def reject(session: Session, request_id, note, yes, as_json):
    """Reject the percent request ID: nothing changes."""
    client = session.client
    if not yes:
        request = client.get(f"/requests/{request_id}")
        confirm(_("Reject {request}?", request=_request(request)), yes=yes)
    answer = client.post(f"/requests/{request_id}/reject", {"note": note})
    if as_json:
        output.print_json(answer)
    else:
        output.say(_("Request {id} rejected: nothing changes.", id=request_id))


@env_control
def stop(session: Session, env, reason, yes, wait, wait_timeout, as_json):
    """EMERGENCY STOP: all of ENV's traffic to proxy at once, cookies or not. Never blocked by a
    change in between (no expected version). With --yes and ENV as SERVICE/ENVIRONMENT it reads
    nothing first: the fastest way."""
    client = session.client
    path = environment_path(client, env)
    if not yes:
        current = client.get(path)
        confirm(
            _(
                "{environment}: EMERGENCY STOP — 100% of traffic to proxy at once (now "
                "{settings}). Go ahead?",
                environment=_name(current),
                settings=output.settings(current.get("desired")),
            ),
            yes=yes,
        )
    answer = client.post(f"{path}/emergency-stop", {"reason": reason})
    _changed(client, answer, wait=wait, timeout=wait_timeout, as_json=as_json)


@env_control
def lift(session: Session, env, reason, yes, wait, wait_timeout, as_json):
    """Lift ENV's emergency stop: traffic follows the percent again (0% after a stop)."""
    _act(
        session,
        env,
        "emergency-lift",
        N_("lift the emergency stop: traffic follows the percent again"),
        reason=reason,
        yes=yes,
        wait=wait,
        timeout=wait_timeout,
        as_json=as_json,
    )


@env_control
def rollback(session: Session, env, reason, yes, wait, wait_timeout, as_json):
    """Roll ENV back to 0% native (the tag stays). Clients holding a native cookie keep it for
    up to 24 h; only the emergency stop overrides cookies."""
    _act(
        session,
        env,
        "rollback",
        N_("roll back to 0% native (clients with a native cookie stay native up to 24 h)"),
        reason=reason,
        yes=yes,
        wait=wait,
        timeout=wait_timeout,
        as_json=as_json,
    )


def _act(session: Session, env, route, what, *, reason, yes, wait, timeout, as_json):
    """A control that must not act on a config that changed since it was read."""
    client = session.client
    path = environment_path(client, env)
    current = client.get(path)
    desired = current.get("desired") or {}
    question = _(
        "{environment}: {what} (now {settings}). Go ahead?",
        environment=_name(current),
        what=_(what),
        settings=output.settings(desired or None),
    )
    confirm(question, yes=yes)
    body = {"reason": reason, "expected_version": desired.get("version", 0)}
    answer = client.post(f"{path}/{route}", body)
    _changed(client, answer, wait=wait, timeout=timeout, as_json=as_json)


def _changed(client: Client, answer: dict, *, wait: bool, timeout: float, as_json: bool) -> None:
    """Reports the change an act recorded; with --wait, follows it until the edge reports it."""
    change = answer["change"]
    if wait:
        change = poll(
            lambda: client.get(f"/changes/{change['id']}"),
            finished=lambda item: item.get("state") in CHANGE_DONE,
            describe=lambda item: _(
                "change v{version}: {state}", version=item.get("version"), state=item.get("state")
            ),
            timeout=timeout,
            interval=WAIT_INTERVAL_SECONDS,
            what=_("change {id}", id=change["id"]),
        )
        answer = {**answer, "change": change}
    if as_json:
        output.print_json(answer)
    else:
        output.say(
            _(
                "Change {id}: {kind}, version {version}, {state}.",
                id=change["id"],
                kind=change.get("kind"),
                version=change.get("version"),
                state=change.get("state"),
            )
        )
    if change.get("state") == "failed":
        raise CliError(_("change {id} failed: see its environment's page", id=change["id"]))
    if change.get("state") == "superseded":
        raise Refused(_("change {id} was overtaken by a newer change", id=change["id"]))


def _name(environment: dict) -> str:
    return f"{environment.get('service')}/{environment.get('name')}"


def _request(request: dict) -> str:
    return _(
        "{environment}: {percent}% {tag}, requested by {by} ({reason})",
        environment=request.get("environment"),
        percent=request.get("percent"),
        tag=request.get("tag"),
        by=request.get("requested_by"),
        reason=request.get("reason") or _("no reason"),
    )


@click.command()
@click.argument("env")
@click.argument("version_id")
@click.option("--message", default="", help="What was deployed (a commit, a pipeline run).")
@json_option
@pass_session
def deployed(session: Session, env, version_id, message, as_json):
    """Say that Worker version VERSION_ID (the Version ID `wrangler deploy` printed) is live on
    ENV, so the preview suite can start against it at once; the dashboard's next read of
    Cloudflare confirms it."""
    client = session.client
    answer = client.post(
        f"{environment_path(client, env)}/deployments",
        {"version_id": version_id, "message": message},
    )
    if as_json:
        output.print_json(answer)
    else:
        output.say(
            _(
                "{environment}: version {version} reported deployed.",
                environment=answer["environment"],
                version=answer["version_id"],
            )
        )
