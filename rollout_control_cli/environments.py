"""The ENV argument: `service/environment` (e.g. `pix-immo-api/production`), or just the
environment's name when the server has exactly one service."""

from __future__ import annotations

import click

from .client import Client
from .words import _

ENV_HELP = "ENV is SERVICE/ENVIRONMENT, or just ENVIRONMENT when there is one service."


def resolve(client: Client, reference: str) -> str:
    service, slash, name = reference.strip().partition("/")
    if slash:
        if not service or not name or "/" in name:
            raise click.BadParameter(
                _(
                    "{reference} is not SERVICE/ENVIRONMENT (e.g. pix-immo-api/production)",
                    reference=repr(reference),
                ),
                param_hint="ENV",
            )
        return f"{service}/{name}"
    if not service:
        raise click.BadParameter(_("name an environment, e.g. production"), param_hint="ENV")
    services = [entry["name"] for entry in client.get("/services")]
    if len(services) == 1:
        return f"{services[0]}/{service}"
    if not services:
        raise click.BadParameter(_("the server has no service yet"), param_hint="ENV")
    raise click.BadParameter(
        _(
            "there are several services ({services}): name one, e.g. {example}",
            services=", ".join(services),
            example=f"{services[0]}/{service}",
        ),
        param_hint="ENV",
    )


def environment_path(client: Client, reference: str) -> str:
    return f"/environments/{resolve(client, reference)}"
