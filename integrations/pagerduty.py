"""PagerDuty Events API v2: ``POST /v2/enqueue`` with ``routing_key``, ``event_action``
(trigger / acknowledge / resolve), ``dedup_key`` and, for a trigger, ``payload{summary, source,
severity, …}``. 202 means accepted; 400 is an invalid event (do not retry); 429 and 5xx are worth
retrying with backoff.

The routing key is a secret: callers store the event without it and it is added only here.
"""

from __future__ import annotations

import json

import httpx

from .edge_qa import parse_retry_after
from .slack import Delivery, undelivered

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


def trigger(
    *,
    dedup_key: str,
    summary: str,
    source: str,
    severity: str,
    component: str = "",
    group: str = "",
    event_class: str = "",
    custom_details: dict | None = None,
    links: list[tuple[str, str]] = (),
    client_name: str = "Rollout Control",
    client_url: str = "",
) -> dict:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}")
    payload = {"summary": summary[:1024], "source": source, "severity": severity}
    for key, value in (("component", component), ("group", group), ("class", event_class)):
        if value:
            payload[key] = value
    if custom_details:
        payload["custom_details"] = custom_details
    event = {"event_action": "trigger", "dedup_key": dedup_key, "payload": payload}
    if links:
        event["links"] = [{"href": href, "text": text} for text, href in links]
    if client_name:
        event["client"] = client_name
    if client_url:
        event["client_url"] = client_url
    return event


def resolve(*, dedup_key: str) -> dict:
    return {"event_action": "resolve", "dedup_key": dedup_key}


def send(url: str, routing_key: str, event: dict, *, client: httpx.Client) -> Delivery:
    body = {**event, "routing_key": routing_key}
    try:
        response = client.post(url, json=body)
    except httpx.HTTPError as exc:
        return undelivered(exc)
    answer = _answer(response)
    status = response.status_code
    if status == 202:
        return Delivery(True, status, answer, transient=False)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Delivery(
            False, status, answer or "rate limited", transient=True, retry_after=retry_after
        )
    return Delivery(False, status, answer, transient=status >= 500)


def _answer(response: httpx.Response) -> str:
    """PagerDuty answers JSON ``{"status", "message", "errors"?}``; keep it readable."""
    text = response.text[:1000].strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    parts = [str(data.get("status", "")), str(data.get("message", ""))]
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(map(str, errors)))
    return ": ".join(part for part in parts if part) or text
