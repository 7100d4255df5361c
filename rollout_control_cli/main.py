"""The `rollout-control` command: a group of commands, each a call or two of /api/v1."""

import click

from .audit import audit
from .client import TIMEOUT_SECONDS
from .config import URL_VARIABLE
from .controls import approve, deployed, lift, percent, reject, rollback, stop
from .login import login, logout, whoami
from .phases import decision, phase
from .preview import preview
from .session import Session
from .status import status


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--url",
    envvar=URL_VARIABLE,
    help=f"The dashboard's address (else ${URL_VARIABLE}, else the one stored by login).",
)
@click.option(
    "--http-timeout",
    type=click.FloatRange(min=0.1),
    default=TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds to wait for one answer of the server.",
)
@click.pass_context
def cli(ctx: click.Context, url, http_timeout):
    """Rollout Control from the command line and from pipelines: the same permissions,
    two-person rule and audit trail as a click on the dashboard.

    \b
    Token: ROLLOUT_CONTROL_TOKEN, else the one stored by `rollout-control login`.
    ENV: SERVICE/ENVIRONMENT (pix-immo-api/production), or just the environment's
    name (production) when the server has exactly one service.

    \b
    Exit codes:
      0  done; a preview run passed (GO); a change waited for is in effect
      1  refused by the server (403 forbidden, 409 stale or already decided),
         a preview run failed (NO-GO), a change waited for was overtaken,
         or you answered "no" to a confirmation
      2  usage error, bad token (401), unknown object (404), invalid input (422),
         too many requests (429), server error (5xx), network error or timeout,
         a preview run ended in error, or no answer to a confirmation (use --yes)
    """
    ctx.obj = Session(url, http_timeout)


for command in (
    login,
    logout,
    whoami,
    status,
    deployed,
    preview,
    percent,
    approve,
    reject,
    stop,
    lift,
    rollback,
    phase,
    decision,
    audit,
):
    cli.add_command(command)
