"""Tables reflow on a phone: ``{% reflow %}`` marks each and labels each body cell with its
column's header (the phone layout itself is checked in Chromium, tests/test_browser_phone.py)."""

from django.template import Context, Template

from rollout.templatetags.tables import reflow


def test_each_body_cell_is_labelled_with_its_columns_header():
    html = reflow(
        '<table class="audit"><thead><tr><th>When</th><th>Who <span>(person)</span></th>'
        "<th></th></tr></thead><tbody>"
        '<tr class="x"><td>today</td><td class="who">alice</td>'
        "<td><button>Approve</button></td></tr>"
        '<tr><td colspan="3">No entries match.</td></tr></tbody></table>'
    )
    assert '<table class="audit reflow">' in html
    assert '<td data-label="When">today</td>' in html
    assert '<td class="who" data-label="Who (person)">alice</td>' in html
    assert "<td><button>Approve</button></td>" in html  # the row's buttons: an empty header
    assert '<td colspan="3">No entries match.</td>' in html
    assert "<th>When</th>" in html  # the header itself stays as it was


def test_a_header_with_quotes_and_ampersands_is_escaped_once_in_the_label():
    html = reflow(
        '<table><thead><tr><th>KV &amp; "edge"</th></tr></thead><tr><td>1</td></tr></table>'
    )
    assert '<table class="reflow">' in html
    assert '<td data-label="KV &amp; &quot;edge&quot;">1</td>' in html


def test_a_table_of_pairs_keeps_its_row_headers_and_gets_no_labels():
    html = reflow("<table class='meta'><tr><th>Build</th><td>b1</td></tr></table>")
    assert html == "<table class='meta reflow'><tr><th>Build</th><td>b1</td></tr></table>"


def test_each_table_takes_the_labels_of_its_own_header():
    html = reflow(
        "<table><thead><tr><th>A</th></tr></thead><tr><td>1</td></tr></table>"
        "<table><tr><td>2</td></tr></table>"
    )
    assert '<td data-label="A">1</td>' in html and "<td>2</td>" in html


def test_the_tag_escapes_what_it_renders_and_marks_it_once():
    rendered = Template(
        '{% load tables %}{% reflow %}<table class="reflow"><thead><tr><th>{{ h }}</th></tr>'
        "</thead><tbody><tr><td>{{ v }}</td></tr></tbody></table>{% endreflow %}"
    ).render(Context({"h": "<b>Who</b>", "v": "<script>"}))
    assert '<table class="reflow">' in rendered
    assert '<td data-label="&lt;b&gt;Who&lt;/b&gt;">&lt;script&gt;</td>' in rendered
