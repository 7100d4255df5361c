"""The forms of a page as a browser without JavaScript sees them, and pressing Confirm."""

from html.parser import HTMLParser


class Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({**attrs, "inputs": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(attrs)


def forms_of(html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


def sent(form: dict) -> dict:
    """What the form sends as it stands (its named inputs)."""
    return {item["name"]: item.get("value", "") for item in form["inputs"] if "name" in item}


def form_with(html: str, marker: str) -> tuple[dict, dict]:
    """The first form whose action or class holds ``marker``, and the data it would send."""
    form = next(f for f in forms_of(html) if marker in f.get("action", "") + f.get("class", ""))
    return form, sent(form)


def confirm(client, confirmation) -> object:
    """Press Confirm on a confirmation page: the last form, sent as it stands."""
    assert confirmation.status_code == 200 and b"<html" in confirmation.content
    form = forms_of(confirmation.content.decode())[-1]
    data = sent(form)
    assert data["confirmed"] == "true"
    return client.post(form["action"], data, follow=True)
