"""`preview run`: the preview suite for a build, as a pipeline step — with --wait it shows the
checks as they finish and ends with the verdict's exit code (0 passed, 1 failed, 2 error)."""

from __future__ import annotations

import click

from . import output
from .environments import environment_path
from .errors import CliError, Refused
from .session import Session, json_option, pass_session, timeout_option
from .waiting import poll
from .words import _

RUN_DONE = {"passed", "failed", "error", "cancelled"}
POLL_INTERVAL_SECONDS = 1.0


@click.group()
def preview():
    """The preview suite (GO/NO-GO for a build)."""


@preview.command()
@click.argument("env", default="preview")
@click.option(
    "--build",
    default="",
    help="A build to name by hand; without it the suite runs against the Worker version live "
    "on preview (see `deployed`).",
)
@click.option("--build-reason", default="", help="Why the build is named by hand.")
@click.option("--wait", is_flag=True, help="Wait for the verdict; exit 0 GO, 1 NO-GO, 2 error.")
@timeout_option(1800)
@json_option
@pass_session
def run(session: Session, env, build, build_reason, wait, wait_timeout, as_json):
    """Run the preview suite against ENV (default: the one service's preview): the version live
    there, or --build."""
    client = session.client
    body = {"build": build, "build_reason": build_reason} if build else {}
    started = client.post(f"{environment_path(client, env)}/preview-runs", body)
    build = started.get("build") or build
    if not wait:
        if as_json:
            output.print_json(started)
        else:
            output.say(
                _(
                    "Preview run {id} for build {build}: {state}.",
                    id=started["id"],
                    build=build,
                    state=started.get("state"),
                )
            )
            output.say(_("Follow it: {url}", url=started.get("report_url") or ""))
        return
    finished = poll(
        lambda: client.get(f"/preview-runs/{started['id']}"),
        finished=lambda run: run.get("state") in RUN_DONE,
        describe=_progress,
        timeout=wait_timeout,
        interval=POLL_INTERVAL_SECONDS,
        what=_("preview run {id}", id=started["id"]),
    )
    _report(finished, as_json)


@preview.command()
@click.argument("run_id", metavar="ID")
@json_option
@pass_session
def show(session: Session, run_id, as_json):
    """Show the preview run ID; the exit code is its verdict as with `run --wait`."""
    _report(session.client.get(f"/preview-runs/{run_id}"), as_json)


@preview.command()
@click.argument("run_id", metavar="ID")
@pass_session
def report(session: Session, run_id):
    """Print the preview run ID's GO/NO-GO report (Markdown, as on its page)."""
    click.echo(session.client.text(f"/preview-runs/{run_id}/report"), nl=False)


def _progress(run: dict) -> str:
    progress = run.get("progress") or {}
    running = [c["name"] for c in run.get("checks") or [] if c.get("state") == "running"]
    line = _(
        "{state}: {done}/{total} checks",
        state=run.get("state"),
        done=progress.get("done", 0),
        total=progress.get("total", "?"),
    )
    return _("{line}, now {running}", line=line, running=", ".join(running)) if running else line


def _report(run: dict, as_json: bool) -> None:
    if as_json:
        output.print_json(run)
    else:
        output.show(
            output.table(
                _("Preview run {id} — build {build}", id=run["id"], build=run.get("build")),
                (_("Check"), _("State"), _("Detail")),
                [(c.get("name"), c.get("state"), c.get("detail")) for c in run.get("checks") or []],
            )
        )
        verdict = run.get("verdict") or _("no verdict")
        output.say(_("{state}: {verdict}", state=run.get("state"), verdict=verdict))
        if run.get("report_url"):
            output.say(_("Report: {url}", url=run["report_url"]))
    state = run.get("state")
    if state == "passed":
        return
    if state == "failed":
        raise Refused(
            _(
                "preview run {id} failed: NO-GO for build {build}",
                id=run["id"],
                build=run.get("build"),
            )
        )
    if state in RUN_DONE:
        raise CliError(
            _("preview run {id} ended in {state}: no verdict", id=run["id"], state=state)
        )
    raise CliError(
        _("preview run {id} is still {state}: no verdict yet", id=run["id"], state=state)
    )
