"""Changes of the desired config that a test makes itself, as the system "test": the same
service calls a page makes, without a person."""

from rollout.models import ConfigChange
from rollout.services import controls


def first_config(environment, settings, *, reason="initial"):
    """The environment's first desired config (version 1)."""
    return controls.create_initial_config(
        environment=environment, settings=settings, reason=reason, system="test"
    )


def change_config(environment, settings, *, reason, expected_version, kind="percent_change"):
    """A new version of the desired config, as a control would record it (a percent change
    unless ``kind`` says otherwise)."""
    return controls.request_change(
        environment=environment,
        settings=settings,
        kind=kind,
        reason=reason,
        expected_version=expected_version,
        system="test",
    )


def in_effect(change, timeout=30):
    """Wait until a worker has seen ``change`` take effect at the edge; returns it refreshed."""
    from tests.conftest import wait_for

    def done():
        change.refresh_from_db()
        return change.state == ConfigChange.State.IN_EFFECT

    wait_for(done, timeout=timeout, message=f"{change} to take effect")
    return change
