"""Slack's interactivity endpoint: the one URL Slack posts every button press and dialog to."""

import json
import logging
import time
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.slack_api import signature_problem

from . import interactions

log = logging.getLogger(__name__)

# Slack's interaction payloads carry the pressed message: a few kilobytes, tens at most.
MAX_BODY_BYTES = 256 * 1024


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


# No session, no CSRF token: Slack proves itself by the signature instead, checked first.
@csrf_exempt
@login_not_required
@require_POST
def interactivity(request):
    if not (settings.SLACK_SIGNING_SECRET and settings.SLACK_BOT_TOKEN):
        return _plain("Slack buttons are not configured here.", 404)
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = MAX_BODY_BYTES + 1
    if length > MAX_BODY_BYTES:
        return _plain(f"Body too large: at most {MAX_BODY_BYTES:,} bytes.", 413)
    body = request.body
    problem = signature_problem(
        secret=settings.SLACK_SIGNING_SECRET,
        timestamp=request.headers.get("X-Slack-Request-Timestamp"),
        signature=request.headers.get("X-Slack-Signature"),
        body=body,
        now=time.time(),
    )
    if problem:
        log.warning("slack request refused: %s", problem, extra={"status_code": 401})
        return _plain(f"Not a request from Slack: {problem}.", 401)
    try:
        payload = json.loads(parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError):
        return _plain("Expected a form field 'payload' holding a JSON object.", 400)
    if not isinstance(payload, dict):
        return _plain("Expected a form field 'payload' holding a JSON object.", 400)
    answer = interactions.receive(payload)
    return JsonResponse(answer) if answer else HttpResponse(status=200)
