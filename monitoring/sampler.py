"""The cohort sampler: N fresh-client probes of the edge, and a verdict on the native share.

The probes run concurrently (bounded by a semaphore-like pool of workers) on one connection
pool, with no cookie jar, so every probe is a new client that the edge must sample afresh. The
worker rate-limits per client: a 429 pauses every probe until its ``Retry-After`` has passed and
is counted apart, then the probe is tried again; it is never a cohort. The share is judged by
the exact two-sided binomial test against the desired ``canary_percent`` (with the Wilson
interval shown), not by a fixed tolerance; with the emergency stop on, any native answer fails.

The sampler shares the environment's edge request budget (integrations/edge.py) with the
observation: it takes a turn before every probe and only from the share the observation's
reserve leaves, so a sample paces itself instead of making a health check see a 429.

The sample's time limit is at least what the budget's pace needs for its size, so a sample
never ends early only because it shared the budget. While it runs it records its progress on its
row (about once a second, from a thread: the network part touches no database itself), which the
cohort panel shows as "n of N, about T s left".

The verdict pools every sample of the same desired version taken since that version was in
effect: each new sample is another look at the pooled counts, so the test's alpha is spent over
the looks (look k is judged at ``alpha · 6 / (π² k²)``, which sums to alpha over any number of
looks): false alarms at the right split stay at or under alpha however long a phase runs, while a
wrong split is found within a few samples (``bench/cohort_detection.py``).

The network part (``sample_edge``) touches no database, so it runs under ``asyncio.run`` inside
a task and on its own in the benchmark.
"""

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from integrations import edge
from integrations.edge_qa import async_probe_client, probe_cohort
from integrations.stats import ShareTest, judge_share
from rollout.models import ConfigChange, DesiredConfig, Environment
from rollout.queueing import try_to_queue

from .models import CohortSample

log = logging.getLogger(__name__)
# Wait this long after a 429 that names no Retry-After.
DEFAULT_PAUSE_SECONDS = 1.0
# Progress is written to the sample's row at most this often.
PROGRESS_EVERY_SECONDS = 1.0


@dataclass
class SampleCounts:
    size: int
    native: int = 0
    proxy: int = 0
    rate_limited: int = 0
    failed: int = 0
    failure_reasons: Counter = field(default_factory=Counter)
    cohort_reasons: Counter = field(default_factory=Counter)
    tags: Counter = field(default_factory=Counter)
    paused_seconds: float = 0.0
    budget_wait_seconds: float = 0.0
    duration_ms: float = 0.0
    # Set when the time limit ended the sample before every probe had an answer.
    stopped_early: bool = False

    @property
    def answered(self) -> int:
        return self.native + self.proxy

    @property
    def unanswered(self) -> int:
        return self.size - self.native - self.proxy - self.failed


class _Pause:
    """The moment before which no probe is sent: pushed forward by every 429's Retry-After, so
    one client of the edge's rate limiter (all of us) backs off as one."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.until = 0.0
        self.total = 0.0

    def extend(self, seconds: float) -> None:
        until = self.loop.time() + seconds
        if until > self.until:
            self.total += until - max(self.until, self.loop.time())
            self.until = until

    async def wait(self, deadline: float) -> bool:
        """Sleep out the pause; False when it would outlast the deadline."""
        while (now := self.loop.time()) < self.until:
            if self.until >= deadline:
                return False
            await asyncio.sleep(self.until - now)
        return True


async def sample_edge(
    url: str,
    *,
    size: int,
    concurrency: int,
    headers: dict | None = None,
    timeout: float = 5.0,
    max_seconds: float = 60.0,
    take_turn: Callable[[], float] | None = None,
    progress: Callable[[SampleCounts], None] | None = None,
) -> SampleCounts:
    """Probe ``url`` as ``size`` fresh clients, at most ``concurrency`` at a time.

    ``take_turn`` (blocking, so run on a thread) takes one request's turn from a budget: 0 when
    taken, else the seconds to wait before asking again. ``progress`` (blocking too) is handed
    the counts so far, at most once per ``PROGRESS_EVERY_SECONDS``.
    """
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    deadline = loop.time() + max_seconds
    counts = SampleCounts(size=size)
    pause = _Pause(loop)
    unclaimed = size
    reported = loop.time()

    async def report():
        nonlocal reported
        if progress is not None and loop.time() - reported >= PROGRESS_EVERY_SECONDS:
            reported = loop.time()
            await asyncio.to_thread(progress, counts)

    async def prober(client):
        nonlocal unclaimed
        while unclaimed > 0:
            unclaimed -= 1
            # One slot: tried again after each 429 until it has a cohort or a failure.
            while True:
                if not await pause.wait(deadline) or loop.time() >= deadline:
                    counts.stopped_early = True
                    return
                waited_from = loop.time()
                if take_turn is not None and not await wait_for_turn(take_turn, loop, deadline):
                    counts.stopped_early = True
                    return
                counts.budget_wait_seconds += loop.time() - waited_from
                budget = min(2 * timeout, max(0.05, deadline - loop.time()))
                answer = await probe_cohort(client, url, headers=headers, max_seconds=budget)
                if answer.outcome == "rate_limited":
                    counts.rate_limited += 1
                    pause.extend(answer.retry_after or DEFAULT_PAUSE_SECONDS)
                    continue
                if answer.outcome == "failed":
                    counts.failed += 1
                    counts.failure_reasons[answer.reason] += 1
                else:
                    setattr(counts, answer.outcome, getattr(counts, answer.outcome) + 1)
                    counts.cohort_reasons[f"{answer.outcome}/{answer.reason}"] += 1
                    counts.tags[answer.tag] += 1
                break
            await report()

    async with async_probe_client(timeout=timeout, max_connections=concurrency) as client:
        await asyncio.gather(*(prober(client) for _ in range(min(concurrency, size))))
    counts.paused_seconds = round(pause.total, 3)
    counts.budget_wait_seconds = round(counts.budget_wait_seconds, 3)
    counts.duration_ms = round((time.perf_counter() - started) * 1000, 1)
    return counts


async def wait_for_turn(take_turn, loop: asyncio.AbstractEventLoop, deadline: float) -> bool:
    """Wait for a turn from the budget; False when it would come after the deadline."""
    while (wait := await asyncio.to_thread(take_turn)) > 0:
        if loop.time() + wait >= deadline:
            return False
        await asyncio.sleep(wait)
    return True


@dataclass(frozen=True)
class Judgement:
    verdict: str
    reason: str
    test: ShareTest | None


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


@dataclass(frozen=True)
class Pool:
    """The counts of the earlier samples of the same desired version since it was in effect."""

    samples: int = 0
    native: int = 0
    answered: int = 0


def look_alpha(alpha: float, look: int) -> float:
    """The alpha of the ``look``-th look at pooled counts: alpha · 6 / (π² look²), so that the
    looks together never spend more than alpha, however many there are."""
    return alpha * 6 / (math.pi**2 * look**2)


def judge(
    counts: SampleCounts,
    *,
    expected_percent: int,
    expected_tag: str,
    emergency: bool,
    alpha: float,
    max_failed_share: float,
    pool: Pool | None = None,
) -> Judgement:
    """The verdict on a sample against the plan (the desired config when it started), on the
    counts pooled with the earlier samples of the same version (``pool``)."""
    Verdict = CohortSample.Verdict
    pool = pool or Pool()
    k, n = counts.native, counts.answered
    look = pool.samples + 1
    pooled_k, pooled_n = k + pool.native, n + pool.answered
    expected = 0.0 if emergency else expected_percent / 100
    level = look_alpha(alpha, look)
    test = judge_share(pooled_k, pooled_n, expected, alpha=level) if pooled_n else None
    note = ""
    if counts.stopped_early:
        note = f"; only {n + counts.failed} of {counts.size} answered within the time limit"
    if emergency and k:
        return Judgement(
            Verdict.FAIL, f"{k} of {n} answers native while the emergency stop is on{note}", test
        )
    if counts.failed > max_failed_share * counts.size:
        worst = counts.failure_reasons.most_common(1)[0][0]
        return Judgement(
            Verdict.FAIL,
            f"{counts.failed} of {counts.size} probes failed (mostly: {worst}){note}",
            test,
        )
    if test is None:
        return Judgement(Verdict.INCONCLUSIVE, f"no probe got a cohort{note}", None)
    interval = f"{test.confidence * 100:g}% interval {_percent(test.low)}–{_percent(test.high)}"
    if emergency:
        return Judgement(
            Verdict.PASS, f"all {n} answers proxy, as the emergency stop requires{note}", test
        )
    observed = f"native {pooled_k} of {pooled_n} ({_percent(test.share)}, {interval})"
    if pool.samples:
        observed += f" over {look} samples of this version"
    if test.p_value < level:
        return Judgement(
            Verdict.FAIL,
            f"{observed} is off the plan's {expected_percent}% (p = {test.p_value:.2g}){note}",
            test,
        )
    other_tags = sorted(tag for tag in counts.tags if tag != expected_tag)
    if other_tags:
        return Judgement(
            Verdict.FAIL,
            f"edge answers with tag {', '.join(other_tags)}, the plan says {expected_tag}{note}",
            test,
        )
    return Judgement(
        Verdict.PASS,
        f"{observed} fits the plan's {expected_percent}% (p = {test.p_value:.2g}){note}",
        test,
    )


# --- the job --------------------------------------------------------------------------------


def queue_sample(
    environment: Environment, *, trigger: str, requested_by=None, size: int | None = None
) -> tuple[CohortSample, bool]:
    """Record a sample to take and hand it to a worker once committed.

    Returns (sample, created); when one is already queued or running for the environment,
    that one comes back with created False: a second click does not stack another run.
    """
    try:
        with transaction.atomic():
            sample = CohortSample.objects.create(
                environment=environment,
                trigger=trigger,
                requested_by=requested_by,
                size=size or settings.COHORT_SAMPLE_SIZE,
                concurrency=settings.COHORT_SAMPLE_CONCURRENCY,
            )
    except IntegrityError:
        existing = CohortSample.objects.filter(
            environment=environment, state__in=CohortSample.OPEN_STATES
        ).first()
        if existing is None:  # it finished in between: try once more
            return queue_sample(environment, trigger=trigger, requested_by=requested_by, size=size)
        return existing, False
    transaction.on_commit(partial(enqueue_sample, sample.pk))
    return sample, True


def enqueue_sample(sample_id: int) -> bool:
    """A broker outage is logged, not raised: the sweep queues the row again later."""
    from .tasks import run_cohort_sample

    return try_to_queue(run_cohort_sample, sample_id, what=f"cohort sample {sample_id}")


def run_sample(sample_id: int) -> CohortSample | None:
    """Take a queued sample: probe, judge, record. Safe to run twice (the second does nothing)."""
    sample = CohortSample.objects.select_related("environment__service").filter(pk=sample_id)
    sample = sample.first()
    if sample is None or not sample.start():
        return None
    environment = sample.environment
    desired = DesiredConfig.objects.filter(environment=environment).first()
    if desired is None:
        sample.give_up("no desired config yet: nothing to judge the split against")
        return sample
    CohortSample.objects.filter(pk=sample.pk).update(
        desired_version=desired.version,
        expected_percent=desired.canary_percent,
        expected_tag=desired.canary_tag,
        emergency=desired.emergency_proxy,
    )
    timeout = settings.HTTP_TIMEOUT_SECONDS
    expected_seconds = edge.sampler_seconds(sample.size)
    max_seconds = settings.COHORT_SAMPLE_MAX_SECONDS
    if expected_seconds is not None:
        # The budget sets the pace; the limit is only for an edge that does not answer.
        max_seconds = max(max_seconds, 1.5 * expected_seconds)
    CohortSample.objects.filter(pk=sample.pk).update(
        expected_seconds=expected_seconds if expected_seconds is not None else max_seconds
    )
    try:
        counts = asyncio.run(
            sample_edge(
                environment.qa_url,
                size=sample.size,
                concurrency=sample.concurrency,
                headers=edge.probe_headers(environment),
                timeout=timeout,
                max_seconds=max_seconds,
                take_turn=partial(edge.take_turn, environment.pk, edge.SAMPLER),
                progress=partial(record_progress, sample.pk),
            )
        )
    except Exception as exc:  # a bug must not kill the schedule: record it on the row
        log.exception("cohort sample %s crashed", sample.pk)
        sample.give_up(f"the sampler crashed: {type(exc).__name__}: {exc}")
        return sample
    change = ConfigChange.objects.filter(environment=environment, version=desired.version).first()
    pool = pool_before(sample, desired, change)
    judgement = judge(
        counts,
        expected_percent=desired.canary_percent,
        expected_tag=desired.canary_tag,
        emergency=desired.emergency_proxy,
        alpha=settings.COHORT_SAMPLE_ALPHA,
        max_failed_share=settings.COHORT_SAMPLE_MAX_FAILED_SHARE,
        pool=pool,
    )
    reason = judgement.reason
    if change is not None and change.state != ConfigChange.State.IN_EFFECT:
        state = change.get_state_display().lower()
        reason += f" (version {desired.version} is {state}, not in effect yet)"
    test = judgement.test
    sample.finish(
        native=counts.native,
        proxy=counts.proxy,
        rate_limited=counts.rate_limited,
        failed=counts.failed,
        failure_reasons=dict(counts.failure_reasons.most_common(20)),
        cohort_reasons=dict(counts.cohort_reasons),
        tags=dict(counts.tags.most_common(10)),
        p_value=test.p_value if test else None,
        interval_low=test.low if test else None,
        interval_high=test.high if test else None,
        confidence=test.confidence if test else None,
        verdict=judgement.verdict,
        verdict_reason=reason[:300],
        duration_ms=counts.duration_ms,
        probed=counts.answered + counts.failed,
        progress_at=timezone.now(),
        budget_wait_seconds=counts.budget_wait_seconds,
        pooled_samples=pool.samples + 1,
        pooled_native=pool.native + counts.native,
        pooled_answered=pool.answered + counts.answered,
    )
    return sample


def record_progress(sample_id: int, counts: SampleCounts) -> None:
    """Write a running sample's counts so far (called from a thread of the sampler's loop)."""
    try:
        CohortSample.objects.filter(pk=sample_id, state=CohortSample.State.RUNNING).update(
            probed=counts.answered + counts.failed,
            native=counts.native,
            proxy=counts.proxy,
            rate_limited=counts.rate_limited,
            failed=counts.failed,
            progress_at=timezone.now(),
        )
    finally:
        connection.close()  # this thread's own connection: none outlives the sampler's loop


def pool_before(sample: CohortSample, desired: DesiredConfig, change) -> Pool:
    """The earlier samples of the version being judged, taken after it was in effect (a sample
    taken before may have seen the previous split)."""
    if change is None or change.in_effect_at is None:
        return Pool()
    earlier = CohortSample.objects.filter(
        environment_id=sample.environment_id,
        state=CohortSample.State.DONE,
        desired_version=desired.version,
        emergency=desired.emergency_proxy,
        started_at__gte=change.in_effect_at,
    ).exclude(pk=sample.pk)
    counts = [(s.native, s.answered) for s in earlier.only("native", "proxy")]
    return Pool(
        samples=len(counts),
        native=sum(k for k, _ in counts),
        answered=sum(n for _, n in counts),
    )
