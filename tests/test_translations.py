"""The German translation is complete and compiles: what CI checks for every change.

``makemessages`` runs over a copy of the project's layout in a temporary directory (symlinks to
the code, a copy of ``locale/``), so the check never rewrites the repository's catalogue; a
message someone added or changed without translating it shows up there as untranslated or fuzzy.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.conftest import skip_unless_installed

ROOT = Path(settings.BASE_DIR)
CATALOGUE = Path("locale/de/LC_MESSAGES/django.po")
# The code whose messages people read; tests, benchmarks and the edge stand-in are ours only.
SOURCES = [
    "api",
    "config",
    "integrations",
    "metrics",
    "monitoring",
    "outbox",
    "rollout",
    "slack_actions",
    "templates",
]


def _entries(po: Path, *options: str) -> list[str]:
    """The msgids ``msgattrib`` selects with ``options`` (the header left out)."""
    out = subprocess.run(
        ["msgattrib", *options, "--no-obsolete", "--no-wrap", str(po)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("msgid ") and line != 'msgid ""']


@pytest.fixture
def fresh_catalogue(tmp_path, monkeypatch, settings):
    if shutil.which("msgfmt") is None or shutil.which("msgattrib") is None:
        skip_unless_installed("gettext")
    for name in SOURCES:
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    monkeypatch.chdir(tmp_path)
    call_command(
        "makemessages",
        locale=["de"],
        symlinks=True,
        no_location=True,
        no_wrap=True,
        ignore_patterns=["*/migrations/*"],
        verbosity=0,
    )
    return tmp_path


def test_makemessages_leaves_nothing_untranslated_in_german(fresh_catalogue):
    po = fresh_catalogue / CATALOGUE
    untranslated = _entries(po, "--untranslated")
    fuzzy = _entries(po, "--only-fuzzy")
    assert not untranslated, f"{len(untranslated)} untranslated: {untranslated[:10]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy: {fuzzy[:10]}"
    assert len(_entries(po, "--translated")) > 900


def test_compilemessages_succeeds_and_the_committed_catalogue_is_current(fresh_catalogue):
    call_command("compilemessages", locale=["de"], verbosity=0)
    compiled = (fresh_catalogue / CATALOGUE).with_suffix(".mo")
    committed = ROOT / CATALOGUE.with_suffix(".mo")
    assert compiled.read_bytes() == committed.read_bytes(), (
        "locale/de/LC_MESSAGES/django.mo is older than the .po: run manage.py compilemessages"
    )
