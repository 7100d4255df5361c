"""Services and environments: their status, the controls that change the desired config, and
their figures. Every write calls the control's one service function (rollout/services/controls.py),
which checks the permission, the state and the two-person rule, and audits."""

from django.utils.translation import gettext as _
from ninja import Router, Status
from ninja.errors import HttpError

from metrics import panels
from rollout.models import Environment, PercentRequest, Service
from rollout.services import controls, deployments

from .. import shapes
from ..auth import require_read
from ..schemas import (
    ChangeAnswer,
    DeploymentIn,
    EmergencyStopIn,
    EnvStatus,
    PercentIn,
    ReportedDeploymentOut,
    RequestAnswer,
    ServiceOut,
    VersionedReasonIn,
)

router = Router(tags=["environments"])
ENVIRONMENT = "/environments/{service}/{environment}"


@router.get("/services", response=list[ServiceOut], summary="Services and their environments")
def list_services(request):
    require_read(request)
    services = Service.objects.prefetch_related("environments__desired").order_by("name")
    return [
        {
            "name": service.name,
            "environments": [
                shapes.environment_status(environment)
                for environment in service.environments.all().order_by("-name")
            ],
        }
        for service in services
    ]


@router.get("/environments", response=list[EnvStatus], summary="Every environment's status")
def list_environments(request):
    require_read(request)
    environments = Environment.objects.select_related("service", "desired")
    return [shapes.environment_status(environment) for environment in environments]


@router.get(ENVIRONMENT, response=EnvStatus, summary="One environment's status")
def environment_status(request, service: str, environment: str):
    require_read(request)
    return shapes.environment_status(shapes.environment_named(service, environment))


@router.post(
    f"{ENVIRONMENT}/percent",
    response={201: ChangeAnswer, 202: RequestAnswer},
    summary="Set the percent: a lower applies at once (201), a raise waits for a second person "
    "(202)",
)
def set_percent(request, service: str, environment: str, payload: PercentIn):
    found = shapes.environment_named(service, environment)
    result = controls.submit_percent(
        environment=found,
        percent=payload.percent,
        tag=payload.tag,
        reason=payload.reason,
        expected_version=payload.expected_version,
        actor=request.user,
        request=request,
    )
    if isinstance(result, PercentRequest):
        return Status(202, {"request": shapes.percent_request(result)})
    return Status(201, {"change": shapes.change(result)})


@router.post(f"{ENVIRONMENT}/rollback", response={201: ChangeAnswer}, summary="Roll back to 0%")
def rollback(request, service: str, environment: str, payload: VersionedReasonIn):
    return _changed(request, controls.rollback, service, environment, payload)


@router.post(
    f"{ENVIRONMENT}/emergency-stop",
    response={201: ChangeAnswer},
    summary="Emergency stop: all traffic to proxy at once, whatever the version",
)
def emergency_stop(request, service: str, environment: str, payload: EmergencyStopIn):
    # No version: a stop is never refused as stale.
    return _changed(
        request, controls.emergency_stop, service, environment, payload, versioned=False
    )


@router.post(
    f"{ENVIRONMENT}/emergency-lift", response={201: ChangeAnswer}, summary="Lift the emergency stop"
)
def emergency_lift(request, service: str, environment: str, payload: VersionedReasonIn):
    return _changed(request, controls.lift_emergency, service, environment, payload)


@router.post(
    f"{ENVIRONMENT}/deployments",
    response={201: ReportedDeploymentOut},
    summary="Report a Worker version deployed (after `wrangler deploy`); the next read of "
    "Cloudflare confirms it",
)
def report_deployment(request, service: str, environment: str, payload: DeploymentIn):
    found = shapes.environment_named(service, environment)
    try:
        reported = deployments.record_reported_deployment(
            found, payload.version_id, payload.message, request.user, request=request
        )
    except deployments.DeploymentRefused as refused:
        raise HttpError(422, str(refused)) from refused
    return Status(201, shapes.reported_deployment(reported))


def _changed(request, control, service, environment, payload, *, versioned=True):
    """A one-person control: its service writes the change (201) or refuses."""
    arguments = {
        "environment": shapes.environment_named(service, environment),
        "reason": payload.reason,
        "actor": request.user,
        "request": request,
    }
    if versioned:
        arguments["expected_version"] = payload.expected_version
    return Status(201, {"change": shapes.change(control(**arguments))})


@router.get(
    f"{ENVIRONMENT}/figures",
    response=dict,
    summary="The metrics panel's figures (the same document as /metrics/<id>/figures.json)",
)
def figures(request, service: str, environment: str, window: str = panels.DEFAULT_WINDOW):
    require_read(request)
    found = shapes.environment_named(service, environment)
    if window not in dict(panels.WINDOW_CHOICES):
        raise HttpError(
            422,
            _("window must be one of %(windows)s.")
            % {"windows": ", ".join(dict(panels.WINDOW_CHOICES))},
        )
    return panels.figures_document(found, window)
