"""Tables that reflow on a phone.

``{% reflow %}<table>…</table>{% endreflow %}`` gives every table inside it the class ``reflow``
and every body cell its column's header as ``data-label``. Below the phone breakpoint
(``static/css/app.css``) each row becomes a block of lines, each line the label and then the value,
so a table never scrolls sideways; on a wide screen nothing changes. The labels are read from the
header as rendered, so they cannot drift from it. A cell spanning several columns ("No entries
match.") and a cell under an empty header (the buttons of a row) get no label."""

import re
from html import unescape

from django import template
from django.utils.html import escape, strip_tags
from django.utils.safestring import mark_safe

register = template.Library()

# Django escapes every value it puts into an attribute, so in a rendered template a ">" only
# ever closes a tag.
TABLE_TAG = re.compile(r"<(/?)(table|thead|tr|th|td)\b([^>]*)>", re.IGNORECASE)
COLSPAN = re.compile(r"""colspan=["']?(\d+)""", re.IGNORECASE)
CLASS = re.compile(r"""(?:^|\s)class=(["'])(.*?)\1""", re.IGNORECASE)


def with_reflow_class(attributes: str) -> str:
    found = CLASS.search(attributes)
    if found is None:
        return f'{attributes} class="reflow"'
    if "reflow" in found.group(2).split():
        return attributes
    return f"{attributes[: found.end(2)]} reflow{attributes[found.end(2) :]}"


def reflow(html: str) -> str:
    """The rendered ``html`` with its tables marked to reflow and their body cells labelled."""
    parts, copied = [], 0
    labels, in_header, header_from, column = [], False, 0, 0
    for tag in TABLE_TAG.finditer(html):
        closing, name, attributes = tag.group(1), tag.group(2).lower(), tag.group(3)
        replacement = None
        if name == "thead":
            in_header = not closing
        elif in_header:
            if name == "th" and not closing:
                header_from = tag.end()
            elif name == "th":
                labels.append(
                    " ".join(unescape(strip_tags(html[header_from : tag.start()])).split())
                )
        elif closing:
            continue
        elif name == "table":
            labels = []
            replacement = f"<table{with_reflow_class(attributes)}>"
        elif name == "tr":
            column = 0
        else:
            colspan = COLSPAN.search(attributes)
            span = int(colspan.group(1)) if colspan else 1
            label = labels[column] if column < len(labels) else ""
            if name == "td" and span == 1 and label and "data-label" not in attributes:
                replacement = f'<td{attributes} data-label="{escape(label)}">'
            column += span
        if replacement is not None:
            parts += [html[copied : tag.start()], replacement]
            copied = tag.end()
    parts.append(html[copied:])
    return "".join(parts)


class ReflowNode(template.Node):
    def __init__(self, nodelist):
        self.nodelist = nodelist

    def render(self, context):
        return mark_safe(reflow(self.nodelist.render(context)))


@register.tag("reflow")
def do_reflow(parser, token):
    """``{% reflow %}…{% endreflow %}`` around one or more tables."""
    nodelist = parser.parse(("endreflow",))
    parser.delete_first_token()
    return ReflowNode(nodelist)
