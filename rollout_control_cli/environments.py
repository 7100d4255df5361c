"""The ENV argument: `service/environment` (e.g. `pix-immo-api/production`), or just the
environment's name when the server has exactly one service."""

from __future__ import annotations

import click

from .client import Client

ENV_HELP = "ENV is SERVICE/ENVIRONMENT, or just ENVIRONMENT when there is one service."


def resolve(client: Client, reference: str) -> str:
    service, slash, name = reference.strip().partition("/")
    if slash:
        if not service or not name or "/" in name:
            raise click.BadParameter(
                f"{reference!r} is not SERVICE/ENVIRONMENT (e.g. pix-immo-api/production)",
                param_hint="ENV",
            )
        return f"{service}/{name}"
    if not service:
        raise click.BadParameter("name an environment, e.g. production", param_hint="ENV")
    services = [entry["name"] for entry in client.get("/services")]
    if len(services) == 1:
        return f"{services[0]}/{service}"
    if not services:
        raise click.BadParameter("the server has no service yet", param_hint="ENV")
    raise click.BadParameter(
        f"there are several services ({', '.join(services)}): name one, "
        f"e.g. {services[0]}/{service}",
        param_hint="ENV",
    )


def environment_path(client: Client, reference: str) -> str:
    return f"/environments/{resolve(client, reference)}"
