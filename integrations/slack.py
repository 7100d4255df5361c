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


# --- Buttons people press in a message, and the dialog some of them open ----------------------
#
# Sent only when the Slack app's bot token and signing secret are configured; Slack then posts
# each press to the interactivity endpoint, which acts on the ``action_id`` and the ``value``
# (the public id of what the button is about).

APPROVE = "rollout_control.approve"
REJECT = "rollout_control.reject"
ACKNOWLEDGE = "rollout_control.acknowledge"
EMERGENCY_STOP = "rollout_control.emergency_stop"
ACTIONS = (APPROVE, REJECT, ACKNOWLEDGE, EMERGENCY_STOP)
# The actions block holding our buttons, taken out of the message once it has been acted on.
ACTIONS_BLOCK_ID = "rollout_control.actions"
# The dialog's one input: the reason or note the act records.
DIALOG_INPUT = "reason"


def button(label: str, action_id: str, value: str, *, style: str = "", confirm=None) -> dict:
    """A button Slack posts to the interactivity endpoint. ``style``: primary or danger;
    ``confirm``: Slack's own "are you sure?" (``confirmation``) before the press is sent."""
    element = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirmation(title: str, text: str, *, confirm: str, deny: str = "Cancel") -> dict:
    return {
        "title": {"type": "plain_text", "text": title[:100]},
        "text": {"type": "mrkdwn", "text": text[:300]},
        "confirm": {"type": "plain_text", "text": confirm[:30]},
        "deny": {"type": "plain_text", "text": deny[:30]},
    }


def with_buttons(payload: dict, buttons: list[dict]) -> dict:
    """``payload`` (from ``message``) with ``buttons`` in an actions block of their own."""
    if not buttons:
        return payload
    block = {"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": buttons}
    return {**payload, "blocks": [*payload["blocks"], block]}


def with_outcome(blocks: list[dict], outcome: str) -> list[dict]:
    """The message's ``blocks`` after an act: our buttons gone, the outcome in their place."""
    kept = [block for block in blocks if block.get("block_id") != ACTIONS_BLOCK_ID]
    return [*kept, {"type": "context", "elements": [{"type": "mrkdwn", "text": outcome[:3000]}]}]


def dialog(
    *,
    callback_id: str,
    title: str,
    text: str,
    label: str,
    submit: str,
    private_metadata: str,
    max_length: int,
) -> dict:
    """A modal (``views.open``) naming what will happen and asking for one text."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": title[:24]},
        "submit": {"type": "plain_text", "text": submit[:24]},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": private_metadata,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            {
                "type": "input",
                "block_id": DIALOG_INPUT,
                "label": {"type": "plain_text", "text": label[:2000]},
                "element": {
                    "type": "plain_text_input",
                    "action_id": DIALOG_INPUT,
                    "multiline": True,
                    "max_length": max_length,
                },
            },
        ],
    }


def dialog_input(view: dict) -> str:
    """The text typed into a submitted ``dialog`` ("" when missing)."""
    try:
        value = view["state"]["values"][DIALOG_INPUT][DIALOG_INPUT]["value"]
    except (KeyError, TypeError):
        return ""
    return value if isinstance(value, str) else ""
