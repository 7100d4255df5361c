"""The GO / NO-GO / HOLD recommendation on synthetic windows: known counts and latencies in real
histograms, one criterion moved at a time from a clear GO."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from integrations.histogram import Histogram, bin_of, representative
from integrations.stats import difference_interval, quantile_rank_interval
from metrics.figures import CohortFigures, Figures, combined
from rollout.services.recommendation import (
    Attestation,
    Incident,
    Thresholds,
    Window,
    recommend,
)

START = datetime(2025, 11, 12, 14, 30, tzinfo=UTC)
HOURS = 24


def latencies(requests: int, p50: float, p90: float, p99: float) -> Histogram:
    """Half the requests at p50, the rest up to the 90th at p90, the last tenth at p99: the
    nearest-rank quantiles are then exactly these values (to half a 1% bin)."""
    histogram = Histogram()
    at_p50 = requests // 2
    up_to_p90 = -(-requests * 9 // 10)  # ⌈0.9·n⌉: the rank of the p90
    histogram.add(p50, at_p50)
    histogram.add(p90, up_to_p90 - at_p50)
    histogram.add(p99, requests - up_to_p90)
    return histogram


def cohort(requests, errors=0, p50=250, p90=500, p99=950) -> CohortFigures:
    histogram = latencies(requests, p50, p90, p99) if requests else Histogram()
    return CohortFigures(requests=requests, errors_5xx=errors, histogram=histogram)


def hour(index: int, native: CohortFigures, proxy: CohortFigures) -> Figures:
    start = START + timedelta(hours=index)
    return Figures(start, start + timedelta(hours=1), {"native": native, "proxy": proxy})


def total(hourly: list[Figures]) -> Figures:
    return combined(hourly, START, START + timedelta(hours=len(hourly)))


def attested(kind, value=True, by="theo", note=""):
    return Attestation(kind, value, by, START + timedelta(hours=HOURS, minutes=5), note)


def window(
    native=None,
    proxy=None,
    *,
    hourly=None,
    log_gaps=(),
    incidents=(),
    attestations=("upload_flow", "team_agrees"),
) -> Window:
    """A 24-hour window. ``native``/``proxy`` are the keyword arguments of ``cohort`` for every
    hour (4,000 native and 36,000 proxy requests an hour by default: 10% canary, about 1M in
    the day); ``hourly`` replaces them with a list of (native, proxy) cohorts per hour."""
    native = {"requests": 4000, "errors": 24, **(native or {})}
    proxy = {"requests": 36000, "errors": 180, **(proxy or {})}
    if hourly is None:
        hourly = [(cohort(**native), cohort(**proxy)) for _ in range(HOURS)]
    hours = [hour(index, n, p) for index, (n, p) in enumerate(hourly)]
    return Window(
        start=START,
        end=START + timedelta(hours=len(hours)),
        figures=total(hours),
        hourly=hours,
        log_gaps=list(log_gaps),
        incidents=list(incidents),
        attestations={kind: attested(kind) for kind in attestations},
    )


def ms(value: float) -> str:
    """A latency as the text shows it: its bin's midpoint, to the millisecond."""
    return f"{representative(bin_of(value)):.0f} ms"


def excess(native: float, proxy: float) -> str:
    return f"{100 * (representative(bin_of(native)) / representative(bin_of(proxy)) - 1):+.1f}%"


def at(hours, minutes=0):
    return START + timedelta(hours=hours, minutes=minutes)


def assert_decided(recommendation, outcome, key, status, *words):
    """The outcome, the status of the criterion that should decide it, and its figures named in
    the reasons shown to people."""
    criterion = recommendation.criterion(key)
    assert recommendation.outcome == outcome, recommendation.reasons
    assert criterion.status == status, criterion.detail
    assert criterion.detail in recommendation.reasons
    for word in words:
        assert word in criterion.detail


# --- a clear GO ----------------------------------------------------------------------------------


def test_a_healthy_day_is_a_go():
    recommendation = recommend(window())

    assert recommendation.outcome == "go"
    assert recommendation.reasons == []
    assert {c.key: c.status for c in recommendation.criteria} == {
        "native_traffic": "pass",
        "native_5xx": "pass",
        "native_vs_proxy_5xx": "pass",
        "native_p90": "pass",
        "p90_vs_proxy": "pass",
        "incidents": "pass",
        "logs": "pass",
        "upload_flow": "pass",
        "team_agrees": "pass",
        "build": "pass",
    }
    assert recommendation.criterion("native_5xx").detail == (
        "native 5xx 0.60% (95% CI 0.55–0.65%) < 1.5%"
    )
    assert "attested by theo" in recommendation.criterion("upload_flow").detail


def test_the_latency_table_has_p50_p90_p99_of_both_cohorts():
    figures = (
        recommend(window(proxy={"p50": 230, "p90": 480, "p99": 920}))
        .criterion("p90_vs_proxy")
        .figures
    )

    assert figures["ttfb_ms"]["native"] == pytest.approx(
        {"p50": 250, "p90": 500, "p99": 950}, rel=0.005
    )
    assert figures["ttfb_ms"]["proxy"] == pytest.approx(
        {"p50": 230, "p90": 480, "p99": 920}, rel=0.005
    )
    assert figures["informational_targets_ms"] == {"p50": 300.0, "p99": 1200.0}


# --- native 5xx ----------------------------------------------------------------------------------


def test_5xx_sustained_above_two_percent_is_a_no_go():
    recommendation = recommend(window(native={"errors": 120}))  # 3% every hour

    assert_decided(recommendation, "no_go", "native_5xx", "fail", "3.00%", "24 of 24 hours")
    # The paired comparison says HOLD too, but only the NO-GO criteria explain a NO-GO.
    assert recommendation.criterion("native_vs_proxy_5xx").verdict == "hold"
    assert recommendation.reasons == [recommendation.criterion("native_5xx").detail]


@pytest.mark.parametrize(
    "bad_hours, outcome, status",
    [(1, "hold", "borderline"), (11, "hold", "borderline"), (12, "no_go", "fail")],
)
def test_5xx_is_sustained_when_high_in_at_least_half_the_hours(bad_hours, outcome, status):
    hourly = [(cohort(4000, 20), cohort(36000, 180)) for _ in range(HOURS)]
    for index in range(bad_hours):
        hourly[2 * index] = (cohort(4000, 2400), cohort(36000, 180))  # a bad hour: 60%

    recommendation = recommend(window(hourly=hourly))

    criterion = recommendation.criterion("native_5xx")
    assert criterion.figures["interval_percent"][0] > 2.0  # the day as a whole is above 2%
    assert_decided(recommendation, outcome, "native_5xx", status, f"{bad_hours} of 24 hours")
    assert ("not sustained" in criterion.detail) == (outcome == "hold")


@pytest.mark.parametrize("errors, shown", [(64, "1.60%"), (76, "1.90%")])
def test_5xx_between_one_and_a_half_and_two_percent_is_a_hold(errors, shown):
    # Proxy as bad as native, so only the absolute rate is in question.
    recommendation = recommend(window(native={"errors": errors}, proxy={"errors": 9 * errors}))

    assert_decided(recommendation, "hold", "native_5xx", "borderline", shown, "1.5–2.0%")
    assert recommendation.criterion("native_vs_proxy_5xx").status == "pass"


def test_5xx_above_two_percent_but_not_significantly_is_a_hold():
    hourly = [(cohort(50, 1), cohort(450, 9)) for _ in range(HOURS)]  # 24 of 1,200: 2.0%…
    hourly[0] = (cohort(50, 2), cohort(450, 9))  # …and one more: 2.08%

    recommendation = recommend(window(hourly=hourly))

    assert_decided(recommendation, "hold", "native_5xx", "borderline", "2.08%", "not significantly")


def test_no_errors_in_100_requests_is_too_little_to_judge():
    hourly = [(cohort(100 if index == 0 else 0), cohort(900, 4)) for index in range(HOURS)]

    recommendation = recommend(window(hourly=hourly))

    assert_decided(
        recommendation,
        "hold",
        "native_5xx",
        "borderline",
        "0.00% (95% CI 0.00–3.70%)",
        "too little traffic to judge",
    )
    assert_decided(recommendation, "hold", "native_traffic", "fail", "100 requests, need 500")


def test_no_errors_in_100k_requests_is_a_go():
    recommendation = recommend(window(native={"requests": 4200, "errors": 0}))

    assert recommendation.outcome == "go"
    assert recommendation.criterion("native_5xx").detail == (
        "native 5xx 0.00% (95% CI 0.00–0.004%) < 1.5%"
    )
    assert recommendation.criterion("native_5xx").figures["requests"] == 100_800
    # Written as the tables beside it write numbers.
    assert recommendation.criterion("native_traffic").detail == (
        "native traffic 100,800 requests ≥ 500"
    )


def test_a_window_without_native_traffic_cannot_be_judged():
    recommendation = recommend(window(native={"requests": 0, "errors": 0}))

    assert_decided(recommendation, "hold", "native_traffic", "fail", "0 requests, need 500")
    for key in ("native_5xx", "native_vs_proxy_5xx", "native_p90", "p90_vs_proxy"):
        assert_decided(recommendation, "hold", key, "missing", "no native")


# --- native vs proxy 5xx -------------------------------------------------------------------------


def test_native_significantly_worse_than_proxy_is_a_hold():
    # Native 1.2% is under 1.5% on its own, but 0.8 points above proxy's 0.4%.
    recommendation = recommend(window(native={"errors": 48}, proxy={"errors": 144}))

    assert recommendation.criterion("native_5xx").status == "pass"
    assert_decided(
        recommendation,
        "hold",
        "native_vs_proxy_5xx",
        "fail",
        "1.20% vs proxy 0.40%",
        "+0.80 points",
        "significantly worse",
    )


def test_native_maybe_worse_than_proxy_is_a_hold_without_significance():
    hourly = [(cohort(30, 0), cohort(270, 1)) for _ in range(HOURS)]  # 720 native, no errors…
    hourly[0] = (cohort(30, 3), cohort(270, 1))  # …but 3: 0.42% vs proxy 0.37%

    recommendation = recommend(window(hourly=hourly))

    criterion = recommendation.criterion("native_vs_proxy_5xx")
    assert criterion.status == "borderline"
    assert criterion.figures["interval_points"][0] < 0 < criterion.figures["interval_points"][1]
    assert "cannot rule out" in criterion.detail
    assert recommendation.outcome == "hold"


def test_without_proxy_traffic_the_paired_criteria_are_missing():
    recommendation = recommend(window(proxy={"requests": 0, "errors": 0}))

    assert recommendation.outcome == "hold"
    for key in ("native_vs_proxy_5xx", "p90_vs_proxy"):
        assert_decided(recommendation, "hold", key, "missing", "no proxy")
    assert recommendation.criterion("native_5xx").status == "pass"


# --- latency -------------------------------------------------------------------------------------


def test_p90_above_800_ms_sustained_is_a_no_go():
    recommendation = recommend(
        window(native={"p90": 850, "p99": 1500}, proxy={"p90": 820, "p99": 1400})
    )

    assert_decided(recommendation, "no_go", "native_p90", "fail", f"p90 {ms(850)}", "24 of 24")


def test_p90_above_800_ms_in_a_few_busy_hours_only_is_a_hold():
    hourly = [(cohort(1000, 5), cohort(9000, 45)) for _ in range(20)]
    hourly += [
        (cohort(10_000, 50, p50=2000, p90=2000, p99=2000), cohort(90_000, 450)) for _ in range(4)
    ]

    recommendation = recommend(window(hourly=hourly))

    assert recommendation.criterion("native_p90").figures["p90_ms"] > 800
    assert_decided(recommendation, "hold", "native_p90", "borderline", ms(2000), "4 of 24 hours")


def test_p90_between_600_and_800_ms_is_a_hold():
    recommendation = recommend(window(native={"p90": 700}, proxy={"p90": 660}))

    assert_decided(
        recommendation, "hold", "native_p90", "borderline", f"p90 {ms(700)}", "600–800 ms"
    )
    assert recommendation.criterion("p90_vs_proxy").status == "pass"


def test_the_p90_interval_comes_from_order_statistics():
    histogram = Histogram()
    for value in range(1, 1001):  # one request at each of 1..1000 ms
        histogram.add(value)
    native = CohortFigures(requests=1000, errors_5xx=0, histogram=histogram)
    hours = [hour(0, native, cohort(9000))]
    one_hour = Window(START, START + timedelta(hours=1), total(hours), hours, [], [], {})

    figures = recommend(one_hour).criterion("native_p90").figures

    # Ranks 900 ± 1.96·√90 → 881 and 919, each value read back within half a 1% bin.
    assert figures["p90_ms"] == pytest.approx(900, rel=0.005)
    assert figures["interval_ms"] == pytest.approx([881, 919], rel=0.005)


@pytest.mark.parametrize(
    "native_p90, status, words",
    [
        (520, "pass", excess(520, 480)),  # about +8%
        (540, "borderline", excess(540, 480)),  # about +12.5%
        (590, "fail", "more than 20% slower"),  # about +23%
    ],
)
def test_p90_against_proxy(native_p90, status, words):
    recommendation = recommend(window(native={"p90": native_p90}, proxy={"p90": 480}))

    criterion = recommendation.criterion("p90_vs_proxy")
    assert criterion.status == status
    assert words in criterion.detail
    if status == "pass":
        assert recommendation.outcome == "go"
    else:
        # Beyond 20% fails GO but is no NO-GO on its own: native p90 is still under 600 ms.
        assert_decided(recommendation, "hold", "p90_vs_proxy", status, f"p90 {ms(native_p90)}")
        assert recommendation.criterion("native_p90").status == "pass"


# --- incidents, logs, attestations --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["emergency_stop", "rollback"])
def test_an_emergency_stop_or_rollback_is_a_no_go(kind):
    incidents = [
        Incident("critical_alert", at(3), "native 5xx above 5% for 2 min"),
        Incident(kind, at(3, 4), "stopped by dana"),
    ]

    recommendation = recommend(window(incidents=incidents))

    assert_decided(
        recommendation, "no_go", "incidents", "fail", kind.replace("_", " "), "17:34 UTC"
    )


def test_a_critical_alert_alone_is_a_hold():
    incidents = [Incident("critical_alert", at(3), "native 5xx above 5% for 2 min")]

    recommendation = recommend(window(incidents=incidents))

    assert_decided(
        recommendation, "hold", "incidents", "borderline", "critical alert", "native 5xx above 5%"
    )


def test_an_unknown_incident_kind_is_refused():
    with pytest.raises(ValueError, match="unknown incident kind"):
        recommend(window(incidents=[Incident("outage", at(1), "?")]))


def test_a_long_log_gap_is_a_hold():
    gaps = [(at(2), at(2, 10)), (at(5, 15), at(5, 38))]

    recommendation = recommend(window(log_gaps=gaps))

    assert_decided(
        recommendation,
        "hold",
        "logs",
        "fail",
        "logs not delivering",
        "23 min",
        "2025-11-12 19:45 UTC",
    )
    assert recommendation.criterion("logs").figures["long_gaps"] == [
        {"start": "2025-11-12T19:45:00+00:00", "end": "2025-11-12T20:08:00+00:00", "minutes": 23.0}
    ]


def test_short_log_gaps_pass():
    recommendation = recommend(window(log_gaps=[(at(2), at(2, 15))]))

    assert recommendation.outcome == "go"
    assert "the longest 15 min" in recommendation.criterion("logs").detail


@pytest.mark.parametrize("kind", ["upload_flow", "team_agrees"])
def test_a_missing_attestation_is_a_hold(kind):
    others = [other for other in ("upload_flow", "team_agrees") if other != kind]

    recommendation = recommend(window(attestations=others))

    assert_decided(recommendation, "hold", kind, "missing", "awaiting attestation")


@pytest.mark.parametrize(
    "kind, words, note",
    [
        ("upload_flow", "data loss / orphaned uploads", "3 orphaned upload intents"),
        ("team_agrees", "team concern: risk too high", "retry storms on Android"),
    ],
)
def test_a_negative_attestation_is_a_no_go(kind, words, note):
    w = window()
    w.attestations[kind] = attested(kind, False, by="dana", note=note)

    recommendation = recommend(w)

    assert_decided(recommendation, "no_go", kind, "fail", words, "dana", note)


# --- thresholds and evidence ---------------------------------------------------------------------


def test_thresholds_can_be_tightened_per_rollout():
    strict = Thresholds(go_max_error_percent=0.5)

    recommendation = recommend(window(), strict)

    assert_decided(recommendation, "hold", "native_5xx", "borderline", "0.60%", "0.5–2.0%")
    assert recommendation.as_dict()["thresholds"]["go_max_error_percent"] == 0.5


def test_the_evidence_is_json_and_the_same_for_the_same_window():
    first = recommend(window(incidents=[Incident("critical_alert", at(3), "slow")])).as_dict()
    second = recommend(window(incidents=[Incident("critical_alert", at(3), "slow")])).as_dict()

    text = json.dumps(first, ensure_ascii=False, allow_nan=False)
    assert text == json.dumps(second, ensure_ascii=False, allow_nan=False)
    assert json.loads(text) == first
    assert list(first) == ["outcome", "reasons", "criteria", "thresholds", "window"]
    assert first["outcome"] == "hold"
    assert first["window"]["cohorts"]["native"]["requests"] == 96_000


# --- the statistics behind it --------------------------------------------------------------------


@pytest.mark.parametrize(
    "k1, n1, k2, n2, low, high",
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
    ],
)
def test_the_difference_interval_matches_newcombe_1998(k1, n1, k2, n2, low, high):
    # Newcombe, Statistics in Medicine 17 (1998), table II, method 10.
    assert difference_interval(k1, n1, k2, n2) == pytest.approx((low, high), abs=5e-5)


def test_the_quantile_ranks_stay_within_the_sample():
    assert quantile_rank_interval(1000, 0.9) == (881, 919)
    assert quantile_rank_interval(5, 0.9) == (3, 5)
    assert quantile_rank_interval(1, 0.5) == (1, 1)


# --- reasons that say what they mean ------------------------------------------------------------


def test_a_rate_whose_interval_straddles_the_threshold_on_ample_traffic_is_borderline():
    # 1.45% of 100,000 native requests: the 95% interval 1.38–1.53% straddles 1.5%.
    hourly = [(cohort(100_000, 1450), cohort(900_000, 13050))]
    hourly += [(cohort(0), cohort(0)) for _ in range(HOURS - 1)]

    criterion = recommend(window(hourly=hourly)).criterion("native_5xx")

    assert criterion.status == "borderline" and criterion.verdict == "hold"
    assert criterion.detail == (
        "native 5xx 1.45%, borderline: cannot tell whether it is under 1.5% (95% CI 1.38–1.53%)"
    )
    assert "too little traffic" not in criterion.detail


@pytest.mark.parametrize(
    "native_requests, words, absent, traffic",
    [
        # one under the minimum
        (499, "too little traffic to judge", "cannot tell", "fail"),
        # at the minimum
        (500, "borderline: cannot tell whether it is under 1.5%", "too little", "pass"),
    ],
)
def test_too_little_traffic_only_under_the_minimum_of_native_requests(
    native_requests, words, absent, traffic
):
    # 3 errors: 0.60%, and at either count the interval reaches 1.75%.
    hourly = [(cohort(native_requests, 3), cohort(4500, 2))]
    hourly += [(cohort(0), cohort(0)) for _ in range(HOURS - 1)]

    recommendation = recommend(window(hourly=hourly))

    assert_decided(recommendation, "hold", "native_5xx", "borderline", "0.60%", words)
    assert recommendation.criterion("native_traffic").status == traffic
    assert absent not in recommendation.criterion("native_5xx").detail


def test_only_the_teams_own_rules_are_labelled_as_such():
    recommendation = recommend(window())

    rules = {criterion.key: criterion.rule for criterion in recommendation.criteria}
    assert rules.pop("native_vs_proxy_5xx") == "team"
    assert rules.pop("build") == "team"
    assert set(rules.values()) == {"runbook"}
    assert recommendation.as_dict()["criteria"][2]["rule"] == "team"


def test_the_teams_own_threshold_is_overridden_like_the_others():
    # Native 1.2% vs proxy 0.4%: 0.8 points, too much for the default 0.5, within 1.5.
    worse = window(native={"errors": 48}, proxy={"errors": 144})

    assert recommend(worse).criterion("native_vs_proxy_5xx").status == "fail"
    relaxed = recommend(worse, Thresholds.from_overrides({"error_excess_points": 1.5}))
    assert relaxed.criterion("native_vs_proxy_5xx").status == "pass"
    assert "at most 1.5 points above proxy" in relaxed.criterion("native_vs_proxy_5xx").detail
    with pytest.raises(ValueError, match="error_excess_points must be a number ≥ 0, not -0.5"):
        Thresholds.from_overrides({"error_excess_points": -0.5})
