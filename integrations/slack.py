"""Slack incoming webhooks: ``POST`` JSON ``{"text", "blocks"}``; success is 200 with body ``ok``;
errors are 4xx with a plain string (``invalid_payload``, ``channel_not_found`` …); 429 carries
``Retry-After``."""

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Delivery:
    ok: bool
    status: int | None
    answer: str
    transient: bool
    retry_after: float | None = None


def undelivered(exc: httpx.HTTPError) -> Delivery:
    """A message that never reached the other side (timed out, host unreachable): worth another
    try."""
    if isinstance(exc, httpx.TimeoutException):
        return Delivery(False, None, "timed out", transient=True)
    return Delivery(False, None, f"unreachable: {type(exc).__name__}", transient=True)


def message(text: str, *, fields: list[tuple[str, str]] = (), link: tuple[str, str] | None = None):
    """A Block Kit message with a plain ``text`` fallback for notifications and old clients."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in fields
                ],
            }
        )
    if link:
        label, url = link
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                ],
            }
        )
    return {"text": text, "blocks": blocks}


def post(webhook_url: str, payload: dict, *, client: httpx.Client) -> Delivery:
    try:
        response = client.post(webhook_url, json=payload)
    except httpx.HTTPError as exc:
        return undelivered(exc)
    answer = response.text[:500].strip()
    if response.status_code == 200:
        return Delivery(answer == "ok", 200, answer, transient=False)
    if response.status_code == 429:
        try:
            retry_after = float(response.headers.get("retry-after", ""))
        except ValueError:
            retry_after = None
        return Delivery(
            False, 429, answer or "rate limited", transient=True, retry_after=retry_after
        )
    return Delivery(False, response.status_code, answer, transient=response.status_code >= 500)
