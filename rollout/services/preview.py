"""The preview suite: the runbook's phase-2 integration checks as one recorded run.

A run (``PreviewRun``) is executed by a Celery task that holds the run's lease. The checks
that only read the edge run concurrently on threads that do HTTP and nothing else; the main
thread records each result as it arrives (the run page shows them live) and keeps the lease
alive. The emergency check changes preview's shared state, so it runs alone afterwards:

1. the restore is written down on the run row (``restore_pending``) before anything changes;
2. the emergency stop goes through the normal, audited config path (``controls.emergency_stop``)
   and its version is recorded on the run in the same transaction;
3. the change is driven into KV and watched until the edge reports it, in this process, with the
   KV writer's own idempotent, lease-protected steps (``kv_writer.reconcile`` / ``confirm``);
4. one probe shows whether the edge routes by the flag;
5. the config from before is restored — only if the desired version is still the suite's
   emergency version (a person who acted meanwhile wins) — and driven to the edge the same way.

Step 5 runs whether step 3 or 4 failed or raised. A worker that died halfway leaves
``restore_pending`` set and its lease runs out: a retry of the task or the periodic sweep takes
the run over, finishes the restore and records the run as interrupted.

Client identity: the edge rate-limits per client (10 requests per window). Every check but the
rate-limit check sends the monitoring headers (``EDGE_PROBE_HEADERS``, which a worker may exempt
from the limit); each check also sends its own ``X-Forwarded-For`` address so concurrent checks
do not share a budget. The edge stand-in keys its limit on that header; a real edge keys on the
connecting IP, where all checks share the worker's address (see docs/preview-and-preflight.md).
"""

import json
import logging
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from integrations import edge
from integrations.edge_qa import (
    COHORT_COOKIE,
    EdgeReport,
    body_disagreement,
    cookie_problem,
    header_problem,
    is_sampled,
    judge_qa,
    probe_client,
    probe_qa,
    qa_warnings,
)
from integrations.kv_value import CanarySettings
from integrations.said import joined

from .. import kv_writer
from ..models import (
    AuditEntry,
    ConfigChange,
    DesiredConfig,
    Environment,
    PreviewCheck,
    PreviewRun,
    Service,
)
from ..permissions import require
from ..queueing import try_to_queue
from . import audit, controls
from .deployments import current_build
from .preview_words import config, decimal, label, parts, record, said

log = logging.getLogger(__name__)

SYSTEM = "preview-suite"
Name = PreviewCheck.Name
# The runbook's order; also the order of the report's table.
CHECK_ORDER = [
    Name.QA_STRUCTURE,
    Name.STICKY_NATIVE,
    Name.STICKY_PROXY,
    Name.HEADER_OVERRIDE,
    Name.EMERGENCY_PROXY,
    Name.RATE_LIMIT,
]
# Every check but the emergency check only reads the edge: these run side by side.
CONCURRENT = [name for name in CHECK_ORDER if name != Name.EMERGENCY_PROXY]
# The edge's limit (docs/contracts.md): the 11th request from one client inside its window gets 429.
RATE_LIMIT = 10
BURST = 12
EXCERPT_CHARS = 800


# --- one check's result --------------------------------------------------------------------------


@dataclass
class Result:
    passed: bool
    # What was seen (for the report), or why it failed: text and messages (preview_words.py).
    words: list = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    duration_ms: int | None = None

    @property
    def note(self) -> str:
        """What was seen, as the record keeps it (in English); empty for a failure."""
        return record(self.words) if self.passed else ""

    @property
    def reason(self) -> str:
        """Why it failed, as the record keeps it (in English); empty for a pass."""
        return "" if self.passed else record(self.words)


def passed(note, evidence: dict) -> Result:
    return Result(True, parts(note), evidence)


def failed(reason, evidence: dict | None = None) -> Result:
    return Result(False, parts(reason), evidence or {})


# --- probing the edge ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the checks of one run probe, and as whom."""

    url: str
    environment: str
    expected: CanarySettings
    monitoring_headers: dict  # secrets: sent, never recorded
    address_prefix: str  # "198.18.7": each check adds its own last octet

    def address(self, name: str) -> str:
        return f"{self.address_prefix}.{CHECK_ORDER.index(name) + 1}"

    def headers(self, name: str, *, monitoring: bool = True, **extra) -> tuple[dict, dict]:
        """(what goes on the wire, what is recorded): the monitoring headers are secrets."""
        sent = {"X-Forwarded-For": self.address(name), **extra}
        return ({**self.monitoring_headers, **sent} if monitoring else sent), sent


def monitoring_headers_for(environment: Environment) -> dict:
    """The extra probe headers of this environment (e.g. a token that the worker exempts from
    its rate limit): the global ones, then the environment's own over them."""
    return edge.probe_headers(environment)


def client_prefix(run: PreviewRun) -> str:
    """Addresses from 198.18.0.0/15 (reserved for benchmarking), one /24 per run, so that a run
    does not inherit the rate-limit budget an earlier run used up."""
    return f"198.{18 + run.public_id.bytes[0] % 2}.{run.public_id.bytes[1]}"


class _LastResponse:
    """Keeps the last response a probe client received: its status line and all its headers
    are evidence, and EdgeReport keeps only the canary header and the cookie."""

    def __init__(self):
        self.response: httpx.Response | None = None

    def __call__(self, response: httpx.Response) -> None:
        self.response = response


def _probe(target: Target, client: httpx.Client, last: _LastResponse, headers, cookies=None):
    last.response = None
    timeout = settings.HTTP_TIMEOUT_SECONDS
    report = probe_qa(
        target.url, client=client, headers=headers, cookies=cookies, max_seconds=2 * timeout
    )
    return report, last.response


def _client(last: _LastResponse) -> httpx.Client:
    client = probe_client(timeout=settings.HTTP_TIMEOUT_SECONDS)
    client.event_hooks = {"request": [], "response": [last]}
    return client


def probe_once(target: Target, *, headers: dict, cookies: dict | None = None):
    last = _LastResponse()
    with _client(last) as client:
        return _probe(target, client, last, headers, cookies)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def response_evidence(report: EdgeReport, response: httpx.Response | None) -> dict:
    record: dict = {"latency_ms": report.latency_ms}
    if response is not None:
        record["status_line"] = (
            f"{response.http_version} {response.status_code} {response.reason_phrase}".strip()
        )
        record["headers"] = [
            [name, _clip(value, 300)] for name, value in response.headers.multi_items()[:40]
        ]
    if report.body is not None:
        record["body_excerpt"] = _clip(json.dumps(report.body, ensure_ascii=False), EXCERPT_CHARS)
    elif report.body_excerpt:
        record["body_excerpt"] = report.body_excerpt[:EXCERPT_CHARS]
    if report.error:
        record["error"] = report.error
    return record


def request_evidence(target: Target, sent: dict, *, monitoring: bool, cookies=None) -> dict:
    shown = dict(sent)
    if cookies:
        shown["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return {
        "method": "GET",
        "url": target.url,
        "headers": shown,
        # Names only: the values are secrets.
        "monitoring_headers": sorted(target.monitoring_headers) if monitoring else [],
    }


def _routing(report: EdgeReport) -> str:
    header = report.header
    return f"cohort={header.cohort};reason={header.reason}"


# --- the checks (HTTP only: they run on threads and touch no database) ---------------------------


def cookie_problems(response: httpx.Response | None) -> list[str]:
    """What is wrong with the attributes of the ``_canary_cohort`` cookie the answer set
    (docs/contracts.md: ``Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=None``). Whether it is
    set and names the right cohort is ``edge_qa.cookie_problem``'s to say, and a missing
    ``Secure`` is ``edge_qa.qa_warnings``'s (a warning, not a failure)."""
    if response is None:
        return []
    values = [
        value
        for value in response.headers.get_list("set-cookie")
        if value.partition("=")[0].strip() == COHORT_COOKIE
    ]
    if not values:
        return []
    _, *parts = [part.strip() for part in values[-1].split(";")]
    attributes = {}
    for part in parts:
        if part:
            key, _, attribute = part.partition("=")
            attributes[key.strip().lower()] = attribute.strip()
    cookie = f"the {COHORT_COOKIE} cookie"
    problems = []
    max_age = attributes.get("max-age")
    if max_age is None:
        problems.append(f"{cookie} has no Max-Age")
    elif not max_age.isdigit() or int(max_age) <= 0:
        problems.append(f"{cookie} has Max-Age={max_age}, expected a positive number of seconds")
    if "path" not in attributes:
        problems.append(f"{cookie} has no Path, expected Path=/")
    elif attributes["path"] != "/":
        problems.append(f"{cookie} has Path={attributes['path']}, expected Path=/")
    if "httponly" not in attributes:
        problems.append(f"{cookie} is not HttpOnly")
    # A cookie without Secure still keeps the client in its cohort: a warning (qa_warnings).
    same_site = attributes.get("samesite")
    if same_site is None:
        problems.append(f"{cookie} has no SameSite, expected SameSite=None")
    elif same_site.lower() != "none":
        problems.append(f"{cookie} has SameSite={same_site}, expected SameSite=None")
    return problems


def check_qa_structure(target: Target, deadline: float) -> Result:
    """Status 200, the JSON document of docs/contracts.md, a parsable X-Pix-Canary, the sticky
    cookie with its attributes, the desired percent and tag, emergency off, every component ok."""
    headers, sent = target.headers(Name.QA_STRUCTURE)
    report, response = probe_once(target, headers=headers)
    evidence = {
        "request": request_evidence(target, sent, monitoring=True),
        **response_evidence(report, response),
    }
    if report.error:
        return failed(report.error, evidence)
    problems = judge_qa(report, expected_environment=target.environment)
    canary = report.canary
    expected = target.expected
    percent = canary.get("percent")
    if isinstance(percent, int) and not isinstance(percent, bool):
        if percent != expected.canary_percent:
            problems.append(
                said(
                    gettext_noop(
                        "the edge reports %(percent)s%%, the desired config is %(wanted)s%%"
                    ),
                    percent=percent,
                    wanted=expected.canary_percent,
                )
            )
    if isinstance(canary.get("tag"), str) and canary["tag"] != expected.canary_tag:
        problems.append(
            said(
                gettext_noop("the edge reports tag %(tag)s, the desired config is %(wanted)s"),
                tag=repr(canary["tag"]),
                wanted=repr(expected.canary_tag),
            )
        )
    if canary.get("emergency_proxy") is True:
        problems.append(said(gettext_noop("emergency_proxy is on (expected off)")))
    elif report.header is not None and report.header.valid and report.header.reason != "sampled":
        problems.append(
            said(
                gettext_noop(
                    "a fresh client (no cookie, no X-Canary header) came back with "
                    "reason=%(reason)s, expected reason=sampled"
                ),
                reason=report.header.reason,
            )
        )
    # judge_qa asks a cookie only of a sampled client; this client is fresh, so it must get one
    # whatever reason the edge gives.
    if not is_sampled(report) and (problem := cookie_problem(report)):
        problems.append(problem)
    problems += cookie_problems(response)
    warnings = qa_warnings(report)
    if warnings:
        evidence["warnings"] = warnings
    if problems:
        return failed(joined(problems), evidence)
    if warnings:
        works = (
            gettext_noop("Works, with %(count)s warning: %(warnings)s")
            if len(warnings) == 1
            else gettext_noop("Works, with %(count)s warnings: %(warnings)s")
        )
        return passed(said(works, count=len(warnings), warnings="; ".join(warnings)), evidence)
    return passed(
        said(
            gettext_noop(
                "Header + JSON correct: %(percent)s%%, tag %(tag)s, emergency off, all health "
                "ok, sticky cookie with Max-Age, Path=/, HttpOnly, Secure, SameSite=None"
            ),
            percent=canary["percent"],
            tag=canary["tag"],
        ),
        evidence,
    )


def _routing_check(
    target: Target,
    name: str,
    *,
    expect: tuple[str, str],
    hint: str,
    cookies: dict | None = None,
    extra: dict | None = None,
) -> Result:
    headers, sent = target.headers(name, **(extra or {}))
    report, response = probe_once(target, headers=headers, cookies=cookies)
    evidence = {
        "request": request_evidence(target, sent, monitoring=True, cookies=cookies),
        **response_evidence(report, response),
    }
    return judge_routing(report, expect=expect, hint=hint, evidence=evidence)


def judge_routing(report: EdgeReport, *, expect: tuple[str, str], hint: str, evidence) -> Result:
    problem = report.error or header_problem(report)
    if problem:
        return failed(problem, evidence)
    wanted = f"cohort={expect[0]};reason={expect[1]}"
    got = _routing(report)
    if got != wanted:
        words = said(
            gettext_noop("got %(got)s, expected %(wanted)s: %(hint)s"),
            got=got,
            wanted=wanted,
            hint=hint,
        )
        return failed(words, evidence)
    disagreement = body_disagreement(report)
    if disagreement:
        return failed(disagreement, evidence)
    return passed(got, evidence)


def check_sticky_native(target: Target, deadline: float) -> Result:
    return _check_sticky(target, "native")


def check_sticky_proxy(target: Target, deadline: float) -> Result:
    return _check_sticky(target, "proxy")


def _check_sticky(target: Target, cohort: str) -> Result:
    """A client holding the cookie of ``cohort`` stays in it."""
    return _routing_check(
        target,
        Name(f"sticky_{cohort}"),
        expect=(cohort, "cookie"),
        cookies={COHORT_COOKIE: cohort},
        hint=said(
            gettext_noop(
                "the edge ignored the %(COHORT_COOKIE)s=%(cohort)s cookie (stickiness broken)"
            ),
            COHORT_COOKIE=COHORT_COOKIE,
            cohort=cohort,
        ),
    )


def check_header_override(target: Target, deadline: float) -> Result:
    return _routing_check(
        target,
        Name.HEADER_OVERRIDE,
        expect=("native", "header"),
        extra={"X-Canary": "1"},
        hint=said(gettext_noop("the edge ignored the X-Canary: 1 override")),
    )


def check_rate_limit(target: Target, deadline: float) -> Result:
    """A burst of 12 requests from one client, without the monitoring headers: the first 10
    pass, the 11th and 12th are answered 429."""
    headers, sent = target.headers(Name.RATE_LIMIT, monitoring=False)
    evidence: dict = {"request": request_evidence(target, sent, monitoring=False)}
    statuses: list = []
    first_limited = None
    last = _LastResponse()
    with _client(last) as client:
        for number in range(1, BURST + 1):
            if time.monotonic() > deadline:
                evidence["statuses"] = statuses
                words = said(
                    gettext_noop(
                        "the suite's time bound ran out after %(sent)s of %(burst)s requests"
                    ),
                    sent=number - 1,
                    burst=BURST,
                )
                return failed(words, evidence)
            report, response = _probe(target, client, last, headers)
            statuses.append(report.status_code if report.status_code is not None else report.error)
            if report.status_code == 429 and first_limited is None:
                first_limited = (number, report, response)
    evidence["statuses"] = statuses
    if first_limited is not None:
        number, report, response = first_limited
        evidence["first_429"] = {"request": number, **response_evidence(report, response)}
    for number, status in enumerate(statuses, start=1):
        if status not in (200, 429):
            words = said(
                gettext_noop("request %(number)s of the burst answered %(status)s"),
                number=number,
                status=status,
            )
            return failed(words, evidence)
    if first_limited is None:
        words = said(
            gettext_noop(
                "no 429 in %(burst)s requests from one client: the edge does not rate-limit "
                "(expected 429 after the %(limit)sth)"
            ),
            burst=BURST,
            limit=RATE_LIMIT,
        )
        return failed(words, evidence)
    number = first_limited[0]
    if number <= RATE_LIMIT:
        words = said(
            gettext_noop(
                "429 already at request %(number)s: expected the first %(limit)s to pass "
                "(had this client used up its budget before the burst?)"
            ),
            number=number,
            limit=RATE_LIMIT,
        )
        return failed(words, evidence)
    after = statuses[RATE_LIMIT:]
    if any(status != 429 for status in after):
        words = said(
            gettext_noop(
                "after the %(limit)sth request the edge answered %(after)s: expected only 429"
            ),
            limit=RATE_LIMIT,
            after=str(after),
        )
        return failed(words, evidence)
    retry_after = first_limited[1].retry_after
    words = [said(gettext_noop("429 after %(limit)s requests"), limit=RATE_LIMIT)]
    if retry_after is not None:
        words.append(
            said(gettext_noop(" (Retry-After %(seconds)ss)"), seconds=decimal(retry_after))
        )
    return passed(words, evidence)


CHECKS = {
    Name.QA_STRUCTURE: check_qa_structure,
    Name.STICKY_NATIVE: check_sticky_native,
    Name.STICKY_PROXY: check_sticky_proxy,
    Name.HEADER_OVERRIDE: check_header_override,
    Name.RATE_LIMIT: check_rate_limit,
}


def _timed(check, target: Target, deadline: float) -> Result:
    started = time.monotonic()
    try:
        result = check(target, deadline)
    except Exception as exc:  # a bug in a check must fail that check, not the run
        log.exception("preview check %s crashed", getattr(check, "__name__", check))
        result = failed(crashed(exc))
    result.duration_ms = round((time.monotonic() - started) * 1000)
    return result


# --- recording -----------------------------------------------------------------------------------


class PreviewRefused(controls.ControlRefused):
    """The suite cannot start as asked; the message says why. ``start`` audits it."""

    audited = True


def start(
    *, environment: Environment, person, build: str = "", build_reason: str = "", request=None
) -> PreviewRun:
    """A person starts the suite against the Worker version live on preview (as Cloudflare
    reports it, or as a pipeline reported it moments ago). Typing the build instead is a fallback
    with a reason, audited; where preview names no Worker script, the typed build is the only
    way. The build becomes the service's current build. A refusal is audited as
    ``preview_suite.refused`` and raised as PreviewRefused."""
    require(person, "rollout.request_change", environment=environment, request=request)
    build, build_reason = " ".join(build.split()), build_reason.strip()
    try:
        with transaction.atomic():
            deployment, build = _build_to_verify(environment, build, build_reason)
            if not DesiredConfig.objects.filter(environment=environment).exists():
                raise PreviewRefused(_("Preview has no desired config yet: connect it first."))
            if deployment is None and environment.worker_script_name:
                audit.record(
                    action="preview_suite.build_typed",
                    actor=person,
                    environment=environment,
                    reason=build_reason,
                    detail=f"build {build} typed instead of the live version ("
                    + _live_words(environment)
                    + ")",
                    request=request,
                )
            set_current_build(environment.service, build, person=person, request=request)
            return create_run(
                environment=environment,
                build=build,
                started_by=person,
                request=request,
                deployment=deployment,
                build_typed_reason="" if deployment else build_reason,
            )
    except IntegrityError:
        refused = PreviewRefused(
            _("A run of the suite is already in progress on preview: wait for it to finish.")
        )
    except PreviewRefused as raised:
        refused = raised
    audit.refused(
        action="preview_suite.refused",
        actor=person,
        environment=environment,
        detail=str(refused),
        request=request,
    )
    raise refused


def _build_to_verify(environment: Environment, typed: str, reason: str):
    """(the deployment verified, the build's name): the live version, or the typed build."""
    live = current_build(environment) if environment.worker_script_name else None
    if typed and live is not None and live.version_ids == [typed]:
        typed = ""  # the live version, typed out
    if not typed:
        if live is None:
            if environment.worker_script_name:
                raise PreviewRefused(
                    _(
                        "The Worker version live on preview is not known (%(environment)s): "
                        "type the build and say why."
                    )
                    % {"environment": _live_words(environment)}
                )
            raise PreviewRefused(_("Name the build deployed to preview, e.g. its deployment id."))
        return live, live.describe(full=True)[:100]
    if len(typed) > 100:
        raise PreviewRefused(_("A build name is at most 100 characters."))
    if environment.worker_script_name and not reason:
        raise PreviewRefused(
            _("Say why you type the build instead of running against the version live on preview.")
        )
    return None, typed


def _live_words(environment: Environment) -> str:
    live = environment.live_deployment
    if environment.deployments_error:
        return f"{environment.deployments_state}: {environment.deployments_error}"
    return f"live: {live.describe(full=True)}" if live else "not read yet"


def set_current_build(service: Service, build: str, *, person, request=None) -> None:
    if service.current_build == build:
        return
    before = service.current_build
    Service.objects.filter(pk=service.pk).update(current_build=build)
    service.current_build = build
    audit.record(
        action="service.current_build",
        actor=person,
        obj=service,
        before={"current_build": before},
        after={"current_build": build},
        detail=f"{service.name}: current build {before or '(none)'} → {build}",
        request=request,
    )


def create_run(
    *,
    environment: Environment,
    build: str,
    started_by,
    request=None,
    deployment=None,
    build_typed_reason: str = "",
):
    """Record a queued run with its checks pending, and queue it once committed.

    Raises IntegrityError when a run of this environment is still open (one at a time).
    """
    with transaction.atomic():
        run = PreviewRun.objects.create(
            environment=environment,
            build=build,
            started_by=started_by,
            deployment=deployment,
            build_typed_reason=build_typed_reason,
        )
        PreviewCheck.objects.bulk_create(
            PreviewCheck(run=run, name=name, position=position)
            for position, name in enumerate(CHECK_ORDER, start=1)
        )
        audit.record(
            action="preview_suite.requested",
            actor=started_by,
            environment=environment,
            obj=run,
            outcome=AuditEntry.Outcome.PENDING,
            detail=f"build {build or '(none)'}",
            request=request,
        )
        transaction.on_commit(partial(enqueue_run, run.pk))
    return run


def enqueue_run(run_id: int) -> bool:
    """Hand the run to a worker; a broker outage is logged, and the sweep queues it later."""
    from ..tasks import run_preview_suite

    return try_to_queue(run_preview_suite, run_id, what=f"preview suite run {run_id}")


def _mark_running(check: PreviewCheck) -> None:
    PreviewCheck.objects.filter(pk=check.pk, state=PreviewCheck.State.PENDING).update(
        state=PreviewCheck.State.RUNNING, started_at=timezone.now()
    )


def _record(check: PreviewCheck, result: Result) -> bool:
    """Write a check's result once; a check finished already (by a takeover) is left as is."""
    now = timezone.now()
    open_states = [PreviewCheck.State.PENDING, PreviewCheck.State.RUNNING]
    check.refresh_from_db(fields=["started_at"])
    duration = result.duration_ms
    if duration is None and check.started_at:
        duration = round((now - check.started_at).total_seconds() * 1000)
    return bool(
        PreviewCheck.objects.filter(pk=check.pk, state__in=open_states).update(
            state=PreviewCheck.State.PASSED if result.passed else PreviewCheck.State.FAILED,
            finished_at=now,
            duration_ms=duration,
            evidence=result.evidence,
            note=result.note[:2000],
            reason=(result.reason or "failed")[:2000] if not result.passed else "",
            words=result.words,
        )
    )


def _fail_unfinished(run: PreviewRun, reason, evidence: dict | None = None) -> None:
    for check in run.checks.exclude(state__in=PreviewCheck.FINISHED_STATES):
        extra = evidence if check.name == Name.EMERGENCY_PROXY else None
        _record(check, failed(reason, extra))


def _audit_finished(run: PreviewRun) -> None:
    checks = list(run.checks.all())
    failing = [c.get_name_display() for c in checks if c.state != PreviewCheck.State.PASSED]
    detail = f"{len(checks) - len(failing)}/{len(checks)} checks passed; build {run.build or '—'}"
    if failing:
        detail += "; failed: " + ", ".join(failing)
    if run.error:
        detail += f"; {run.error}"
    audit.record(
        action=f"preview_suite.{run.state}",
        system=SYSTEM,
        environment=run.environment,
        obj=run,
        outcome=AuditEntry.Outcome.OK if run.passed else AuditEntry.Outcome.FAILED,
        detail=detail,
    )


# --- executing a run -----------------------------------------------------------------------------


class LeaseLost(Exception):
    """Another worker took the run over (this one stalled past its lease): stop acting."""


class Execution:
    """One worker's hold on a run: renews the lease while it works."""

    def __init__(self, run: PreviewRun, token: uuid.UUID):
        self.run = run
        self.token = token
        self.lease_seconds = settings.PREVIEW_SUITE_LEASE_SECONDS
        self._renewed = time.monotonic()

    def renew(self) -> None:
        if time.monotonic() - self._renewed < self.lease_seconds / 4:
            return
        if not self.run.renew_lease(self.token, seconds=self.lease_seconds):
            raise LeaseLost(f"preview suite run {self.run.pk} was taken over")
        self._renewed = time.monotonic()

    def deadline(self) -> float:
        """The run's deadline on the monotonic clock of this process."""
        left = (self.run.deadline_at - timezone.now()).total_seconds()
        return time.monotonic() + max(0.0, left)


def execute(run_id: int) -> str:
    """Run a queued run, or take over one whose worker died. Safe to call twice at once: the
    run's lease lets one caller act."""
    run = PreviewRun.objects.select_related("environment__service").filter(pk=run_id).first()
    if run is None:
        return "gone"
    if run.is_finished and not run.restore_pending:
        return "finished"
    token = run.try_acquire_lease(seconds=settings.PREVIEW_SUITE_LEASE_SECONDS)
    if token is None:
        return "busy"
    execution = Execution(run, token)
    try:
        run.refresh_from_db()
        if run.state == PreviewRun.State.QUEUED:
            if not run.start(timeout_seconds=settings.PREVIEW_SUITE_TIMEOUT_SECONDS):
                return "busy"
            _run_suite(execution)
            return run.state
        take_over(execution)
        return "taken over"
    except LeaseLost as exc:
        log.warning("%s; leaving it to the new holder", exc)
        return "lease lost"
    except Exception as exc:
        log.exception("preview suite run %s stopped on an error", run_id)
        try:
            take_over(
                execution,
                why=said(
                    gettext_noop("the suite stopped on an error: %(error)s"),
                    error=f"{type(exc).__name__}: {exc}",
                ),
            )
        except Exception:
            log.exception("could not record the end of preview suite run %s", run_id)
        return "error"
    finally:
        run.release_lease(token)


def _run_suite(execution: Execution) -> None:
    run = execution.run
    environment = run.environment
    checks = {check.name: check for check in run.checks.all()}
    desired = DesiredConfig.objects.filter(environment=environment).first()
    if desired is None:
        _fail_unfinished(
            run, said(gettext_noop("preview has no desired config yet: connect it first"))
        )
        run.finish(error="preview has no desired config")
        _audit_finished(run)
        return
    run.expected = {**desired.settings.as_dict(), "version": desired.version}
    PreviewRun.objects.filter(pk=run.pk).update(expected=run.expected)
    target = Target(
        url=environment.qa_url,
        environment=environment.name,
        expected=desired.settings,
        monitoring_headers=monitoring_headers_for(environment),
        address_prefix=client_prefix(run),
    )
    deadline = execution.deadline()
    _run_concurrent(execution, target, checks, deadline)
    emergency = checks[Name.EMERGENCY_PROXY]
    _mark_running(emergency)
    if time.monotonic() >= deadline:
        result = failed(_out_of_time())
    else:
        result = emergency_check(execution, target, deadline)
    _record(emergency, result)
    run.finish()
    _audit_finished(run)


def _out_of_time() -> dict:
    return said(
        gettext_noop("did not finish within the suite's bound of %(seconds)ss"),
        seconds=decimal(settings.PREVIEW_SUITE_TIMEOUT_SECONDS),
    )


def crashed(exc: Exception) -> dict:
    return said(gettext_noop("the check crashed: %(error)s"), error=f"{type(exc).__name__}: {exc}")


def _run_concurrent(execution: Execution, target: Target, checks: dict, deadline: float) -> None:
    pool = ThreadPoolExecutor(max_workers=len(CONCURRENT), thread_name_prefix="preview-check")
    try:
        futures = {}
        for name in CONCURRENT:
            _mark_running(checks[name])
            futures[pool.submit(_timed, CHECKS[name], target, deadline)] = name
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                _record(checks[futures[future]], future.result())
            execution.renew()
            if pending and time.monotonic() > deadline:
                for future in pending:
                    _record(checks[futures[future]], failed(_out_of_time()))
                return
    finally:
        # Threads still out are bounded by the HTTP timeouts; do not wait for them here.
        pool.shutdown(wait=False, cancel_futures=True)


# --- the emergency check -------------------------------------------------------------------------


def emergency_check(execution: Execution, target: Target, deadline: float) -> Result:
    """Turn emergency_proxy on in preview, see the edge route by it, restore — always."""
    evidence: dict = {}
    lease_lost = False
    try:
        result = _emergency_on_and_observe(execution, target, deadline, evidence)
    except LeaseLost:
        lease_lost = True  # the new holder of the run restores
        raise
    except Exception as exc:
        log.exception("the emergency check of run %s crashed", execution.run.pk)
        result = failed(crashed(exc))
    finally:
        # Also on a worker's shutdown (SystemExit) — only a killed process skips this, and then
        # the retry or the sweep restores.
        if not lease_lost:
            restore = restore_after_emergency(execution.run.pk, renew=execution.renew)
    evidence["restore"] = restore.evidence() if restore else None
    result.evidence = {**evidence, **result.evidence}
    if restore is None:
        return result
    problem = restore.problem()
    if problem:
        words = [*result.words, "; ", problem] if not result.passed else [problem]
        return failed(words, result.evidence)
    result.words += ["; ", restore.summary()]
    return result


def _emergency_on_and_observe(execution, target: Target, deadline: float, evidence) -> Result:
    run = execution.run
    environment = run.environment
    try:
        # The stop's own plan says whether it may be pressed, as for an alert rule or a person.
        desired = controls.plan_emergency_stop(environment=environment, system=SYSTEM).desired
    except controls.ControlRefused as exc:
        words = said(
            gettext_noop(
                "%(refusal)s The suite leaves it alone (lift it, then run the suite again)."
            ),
            refusal=str(exc),
        )
        return failed(words)
    # The restore intent goes onto the row before anything changes.
    PreviewRun.objects.filter(pk=run.pk).update(
        restore_pending=True,
        restore_settings=desired.settings.as_dict(),
        restore_from_version=desired.version,
        emergency_version=None,
        restore_version=None,
        restore_outcome=PreviewRun.RestoreOutcome.NONE,
        restore_note="",
        restore_words=[],
    )
    who = run.started_by.get_username() if run.started_by else "the system"
    try:
        with transaction.atomic():
            change = controls.emergency_stop(
                environment=environment,
                reason=f"Preview suite run {run.public_id} (started by {who}, build "
                f"{run.build or '—'}): emergency check — turn the flag on, observe, restore",
                system=SYSTEM,
            )
            # The exact state it replaced, committed together with the stop itself.
            PreviewRun.objects.filter(pk=run.pk).update(
                emergency_version=change.version,
                restore_settings=change.before,
                restore_from_version=change.version - 1,
            )
    except controls.ControlRefused as exc:
        return failed(
            said(gettext_noop("could not turn the emergency flag on: %(error)s"), error=str(exc))
        )
    until = min(deadline, time.monotonic() + settings.PREVIEW_SUITE_EDGE_WAIT_SECONDS)
    change = drive(change.pk, until=until, renew=execution.renew)
    evidence["emergency_change"] = describe_change(change)
    if change.state != ConfigChange.State.IN_EFFECT:
        return failed(
            said(
                gettext_noop(
                    "the edge did not report emergency_proxy=true in time (version "
                    "%(version)s is %(state)s%(error)s)"
                ),
                version=change.version,
                state=label(ConfigChange.State(change.state)),
                error=f": {change.last_error}" if change.last_error else "",
            )
        )
    headers, sent = target.headers(Name.EMERGENCY_PROXY)
    report, response = probe_once(target, headers=headers)
    evidence["request"] = request_evidence(target, sent, monitoring=True)
    evidence.update(response_evidence(report, response))
    result = judge_routing(
        report,
        expect=("proxy", "emergency"),
        hint=said(gettext_noop("the edge reports emergency_proxy=true but did not route by it")),
        evidence={},
    )
    if result.passed:
        result.words = [
            said(
                gettext_noop("100%% proxy (%(routing)s), in effect %(seconds)ss after the request"),
                routing=record(result.words),
                seconds=decimal(change.time_to_effect.total_seconds(), ".1f"),
            )
        ]
    return result


def describe_change(change: ConfigChange | None) -> dict | None:
    if change is None:
        return None
    return {
        "version": change.version,
        "kind": change.kind,
        "state": change.state,
        "after": change.after,
        "time_to_effect_s": (
            round(change.time_to_effect.total_seconds(), 2) if change.time_to_effect else None
        ),
        "last_error": change.last_error,
    }


def drive(change_id: int, *, until: float, renew=lambda: None) -> ConfigChange:
    """Move one config change towards "in effect" in this process, until ``until`` (monotonic).

    ``kv_writer.reconcile`` and ``confirm`` are idempotent and lease-protected, so a worker that
    got the same environment from the queue meanwhile does no harm; whoever is first writes.
    """
    poll = max(settings.EDGE_POLL_INTERVAL_SECONDS, 0.05)
    final = (
        ConfigChange.State.IN_EFFECT,
        ConfigChange.State.FAILED,
        ConfigChange.State.SUPERSEDED,
    )
    while True:
        change = ConfigChange.objects.get(pk=change_id)
        if change.state in final or time.monotonic() >= until:
            return change
        if change.state == ConfigChange.State.WRITTEN:
            outcome = kv_writer.confirm(change.pk)
        else:
            outcome = kv_writer.reconcile(change.environment_id)
        renew()
        if outcome.retry_in is not None:
            pause = outcome.retry_in
        elif outcome.confirm_change_id == change.pk:
            pause = 0.0  # written: watch the edge at once
        else:
            pause = poll
        time.sleep(max(0.0, min(pause, until - time.monotonic(), 1.0)))


@dataclass
class Restore:
    outcome: str
    words: dict  # what became of preview, as a message (preview_words.py)
    change: ConfigChange | None = None

    @property
    def note(self) -> str:
        return record(self.words)

    def evidence(self) -> dict:
        return {"outcome": self.outcome, "note": self.note, "change": describe_change(self.change)}

    def problem(self) -> dict | None:
        """Why preview may not be as it was before the check, if so."""
        if self.outcome != PreviewRun.RestoreOutcome.RESTORED or self.change is None:
            return None
        if self.change.state != ConfigChange.State.IN_EFFECT:
            return said(
                gettext_noop(
                    "the restore (version %(version)s) is %(state)s, not yet reported by the "
                    "edge%(error)s"
                ),
                version=self.change.version,
                state=label(ConfigChange.State(self.change.state)),
                error=f": {self.change.last_error}" if self.change.last_error else "",
            )
        return None

    def summary(self) -> dict:
        if self.outcome == PreviewRun.RestoreOutcome.RESTORED and self.change is not None:
            seconds = self.change.time_to_effect
            if seconds:
                return said(
                    gettext_noop(
                        "restored %(config)s (version %(version)s), in effect after %(seconds)ss"
                    ),
                    config=config(self.change.settings),
                    version=self.change.version,
                    seconds=decimal(seconds.total_seconds(), ".1f"),
                )
            return said(
                gettext_noop("restored %(config)s (version %(version)s)"),
                config=config(self.change.settings),
                version=self.change.version,
            )
        return self.words


def restore_after_emergency(run_id: int, *, renew=lambda: None) -> Restore | None:
    """Finish a pending restore: put back the desired config from before the suite's emergency
    stop — only if the desired version is still that stop's version — and drive it to the edge.

    Returns None when nothing was pending. Called by the check itself, and by a retry or the
    sweep for a run whose worker died.
    """
    with transaction.atomic():
        run = (
            PreviewRun.objects.select_for_update()
            .select_related("environment")
            .filter(pk=run_id, restore_pending=True)
            .first()
        )
        if run is None:
            return None
        environment = run.environment
        desired = DesiredConfig.objects.get(environment=environment)
        change = None
        if run.emergency_version is None:
            outcome = PreviewRun.RestoreOutcome.NOT_NEEDED
            words = said(
                gettext_noop("nothing to restore: the suite's emergency stop was never recorded")
            )
        elif desired.version != run.emergency_version:
            outcome, words = _overtaken(run, desired)
        else:
            before = CanarySettings(**run.restore_settings)
            try:
                change = controls.request_change(
                    environment=environment,
                    settings=before,
                    kind=ConfigChange.Kind.LIFT_EMERGENCY,
                    reason=f"Preview suite run {run.public_id}: restore the config from before "
                    f"the emergency check (version {run.restore_from_version}: "
                    f"{before.describe()})",
                    expected_version=run.emergency_version,
                    system=SYSTEM,
                )
            except controls.ConfigConflict:
                outcome, words = _overtaken(run, DesiredConfig.objects.get(environment=environment))
            else:
                outcome = PreviewRun.RestoreOutcome.RESTORED
                words = said(
                    gettext_noop("restored %(config)s as version %(version)s"),
                    config=config(before),
                    version=change.version,
                )
        note = record(words)
        PreviewRun.objects.filter(pk=run.pk).update(
            restore_pending=False,
            restore_outcome=outcome,
            restore_note=note,
            restore_words=[words],
            restore_version=change.version if change else None,
        )
        audit.record(
            action="preview_suite.restored"
            if outcome == PreviewRun.RestoreOutcome.RESTORED
            else "preview_suite.restore_skipped",
            system=SYSTEM,
            environment=environment,
            obj=run,
            before=change.before if change else None,
            after=change.after if change else None,
            detail=note,
        )
    if change is not None:
        until = time.monotonic() + settings.PREVIEW_SUITE_EDGE_WAIT_SECONDS
        change = drive(change.pk, until=until, renew=renew)
    return Restore(outcome, words, change)


def _overtaken(run: PreviewRun, desired: DesiredConfig) -> tuple[str, dict]:
    latest = ConfigChange.objects.filter(
        environment_id=run.environment_id, version=desired.version
    ).first()
    by = (
        said(
            gettext_noop(" (%(kind)s by %(actor)s)"),
            kind=label(ConfigChange.Kind(latest.kind)),
            actor=latest.actor_label,
        )
        if latest
        else ""
    )
    return (
        PreviewRun.RestoreOutcome.OVERTAKEN,
        said(
            gettext_noop(
                "not restored: the config moved on to version %(version)s%(by)s after the "
                "suite's emergency stop (version %(emergency)s); that change stands"
            ),
            version=desired.version,
            by=by,
            emergency=run.emergency_version,
        ),
    )


# --- taking over, the sweep ----------------------------------------------------------------------


def take_over(execution: Execution, *, why: str = "") -> None:
    """Finish a run whose worker stopped: restore if pending, record the rest as interrupted."""
    run = execution.run
    run.refresh_from_db()
    why = why or said(
        gettext_noop("interrupted: the worker running the suite stopped (attempt %(attempt)s)"),
        attempt=run.attempts,
    )
    restore = None
    if run.restore_pending:
        restore = restore_after_emergency(run.pk, renew=execution.renew)
    reason = [why]
    if restore is not None:
        reason += ["; ", restore.problem() or restore.summary()]
    evidence = {"restore": restore.evidence()} if restore else None
    _fail_unfinished(run, reason, evidence)
    if run.state == PreviewRun.State.RUNNING:
        run.finish(error=record(why))
        _audit_finished(run)


def sweep(now=None) -> dict:
    """Runs whose worker died (lease expired), restores still pending, and queued runs whose
    message was lost. Found by state, not by queue."""
    now = now or timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    stalled = PreviewRun.objects.filter(free).filter(
        Q(state=PreviewRun.State.RUNNING) | Q(restore_pending=True)
    )
    taken_over = []
    for run_id in stalled.values_list("pk", flat=True):
        if execute(run_id) == "taken over":
            taken_over.append(run_id)
    grace = now - timedelta(seconds=2 * settings.SWEEP_INTERVAL_SECONDS)
    expired_before = now - timedelta(seconds=settings.PREVIEW_SUITE_TIMEOUT_SECONDS)
    requeued, expired = [], []
    queued = PreviewRun.objects.filter(free, state=PreviewRun.State.QUEUED)
    for run in queued.filter(created_at__lt=grace):
        if run.created_at < expired_before:
            if _expire(run):
                expired.append(run.pk)
        elif enqueue_run(run.pk):
            requeued.append(run.pk)
    return {"taken_over": taken_over, "requeued": requeued, "expired": expired}


def _expire(run: PreviewRun) -> bool:
    error = (
        "no worker started the run within "
        f"{settings.PREVIEW_SUITE_TIMEOUT_SECONDS:g}s; nothing was changed"
    )
    if not PreviewRun.objects.filter(pk=run.pk, state=PreviewRun.State.QUEUED).update(
        state=PreviewRun.State.FAILED, finished_at=timezone.now(), error=error
    ):
        return False
    run.refresh_from_db()
    _fail_unfinished(run, said(gettext_noop("not run: %(error)s"), error=error))
    _audit_finished(run)
    return True
