"""The preview suite: start a run for a build, follow it, download its report."""

from uuid import UUID

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import Router, Status

from rollout.models import PreviewRun
from rollout.services import preview
from rollout.views.preview import report_download

from .. import shapes
from ..auth import require_read
from ..problems import NotFound
from ..schemas import PreviewRunIn, PreviewRunOut

router = Router(tags=["preview suite"])


def _run(public_id) -> PreviewRun:
    return shapes.found(
        PreviewRun.objects.select_related("environment__service", "started_by"),
        public_id,
        gettext_lazy("preview run"),
    )


@router.post(
    "/environments/{service}/{environment}/preview-runs",
    response={201: PreviewRunOut},
    summary="Start the preview suite against the build live on preview, or a typed build "
    "(one run at a time)",
)
def start(request, service: str, environment: str, payload: PreviewRunIn):
    found = shapes.environment_named(service, environment)
    if found.name != found.PREVIEW:
        raise NotFound(
            _("The preview suite runs on preview, not on %(name)s.") % {"name": found.name}
        )
    run = preview.start(
        environment=found,
        person=request.user,
        build=payload.build,
        build_reason=payload.build_reason,
        request=request,
    )
    return Status(201, shapes.preview_run(run))


@router.get("/preview-runs/{public_id}", response=PreviewRunOut, summary="A run's progress")
def get_run(request, public_id: UUID):
    require_read(request)
    return shapes.preview_run(_run(public_id))


@router.get(
    "/preview-runs/{public_id}/report",
    response={200: str},
    summary="The run's GO / NO-GO report (Markdown, as the page's download)",
    openapi_extra={
        "responses": {200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}}
    },
)
def report(request, public_id: UUID):
    require_read(request)
    return report_download(_run(public_id))
