import pytest

from rollout.forms.environments import InitialConfigForm


def _form(**data):
    return InitialConfigForm(
        data={"canary_percent": "10", "canary_tag": "B2a", "reason": "initial", **data}
    )


def test_a_good_form_gives_settings():
    form = _form()
    assert form.is_valid(), form.errors
    assert form.canary_settings().canary_percent == 10


@pytest.mark.parametrize("percent", ["-1", "101", "10.5", "abc", "10.0", " ", "1e2"])
def test_bad_percents_get_one_clear_message(percent):
    form = _form(canary_percent=percent)
    assert not form.is_valid()
    message = form.errors["canary_percent"][0]
    assert message in ("Percent must be a whole number from 0 to 100.", "Enter a percent.")


@pytest.mark.parametrize("tag", ["", "   ", "B2a; rm -rf", "x" * 33, "-lead"])
def test_bad_tags_are_refused(tag):
    form = _form(canary_tag=tag)
    assert not form.is_valid()
    assert "canary_tag" in form.errors


@pytest.mark.parametrize("reason", ["", "   \n  "])
def test_a_reason_is_required(reason):
    form = _form(reason=reason)
    assert not form.is_valid()
    assert form.errors["reason"] == ["Give a reason: it goes into the audit trail."]
