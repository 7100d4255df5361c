"""The client's own words in the language of its environment: the one it asks the server to
answer in (``LC_ALL``, else ``LC_MESSAGES``, else ``LANG``), so a refusal's title from the server
and the hint after it read alike. English, and German from the table below: a small table rather
than gettext, so the client ships no compiled catalogue; tests/cli/test_cli_words.py fails on a
message the table lacks or says with other placeholders.

    _("Request {id} rejected: nothing changes.", id=7)

A message is its English text with ``{named}`` placeholders; what the server sent (a state, a
kind, a reason) goes in as it is. ``N_`` marks a message said later with ``_``. The options'
``--help`` texts stay English, as do click's own framing (``Error:``, ``Usage:``)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def accept_language(environ: Mapping[str, str] = os.environ) -> str | None:
    """The language of the person's environment, as HTTP names it: the first of ``LC_ALL``,
    ``LC_MESSAGES`` and ``LANG`` that is set (POSIX's order for messages), "de_DE.UTF-8" → "de".
    None for the C locale or none set: the server answers in its default, English. The server's
    words (a refusal, a problem's title and detail) come in this language, unless the token's
    person chose theirs on "Your settings"."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            language = value.split(".")[0].split("@")[0].split("_")[0].lower()
            return language if language.isalpha() and language not in ("c", "posix") else None
    return None


def _(message: str, **params: object) -> str:
    """``message`` in the environment's language, its placeholders filled."""
    said = GERMAN.get(message, message) if accept_language() == "de" else message
    return said.format(**params) if params else said


def N_(message: str) -> str:  # noqa: N802 - gettext's name for it
    """A message said later, with ``_``: marked here so the table's test finds it."""
    return message


GERMAN = {
    # client.py: what the server's answer means, and what to do about it
    "the server did not accept the token: run `rollout-control login` again or set {variable}": (
        "der Server hat das Token nicht angenommen: führe `rollout-control login` erneut aus "
        "oder setze {variable}"
    ),
    "the token's user lacks the permission for this (`rollout-control whoami` lists them)": (
        "dem Benutzer des Tokens fehlt dafür die Berechtigung (`rollout-control whoami` zeigt "
        "seine Berechtigungen)"
    ),
    "error": "Fehler",
    "(body)": "(Inhalt)",
    "the desired config is now at version {version}: check `rollout-control status` and try "
    "again": (
        "die Soll-Konfiguration ist jetzt bei Version {version}: prüfe `rollout-control status` "
        "und versuche es erneut"
    ),
    "try again in {seconds} s": "versuche es in {seconds} s erneut",
    "{url} answered {status} with something that is not JSON: is it the dashboard's address?": (
        "{url} hat {status} mit etwas geantwortet, das kein JSON ist: ist das die Adresse des "
        "Dashboards?"
    ),
    "no answer from {url} within {seconds} s: the server is busy or down; what you asked for "
    "may or may not have happened (check the status)": (
        "keine Antwort von {url} innerhalb von {seconds} s: der Server ist ausgelastet oder "
        "nicht erreichbar; was du verlangt hast, ist vielleicht geschehen, vielleicht nicht "
        "(prüfe den Status)"
    ),
    "cannot reach {url}: {error}": "{url} ist nicht erreichbar: {error}",
    "{url} answered with a redirect to {location}: is it the dashboard's address?": (
        "{url} hat mit einer Weiterleitung nach {location} geantwortet: ist das die Adresse des "
        "Dashboards?"
    ),
    # session.py, config.py, waiting.py
    "no server: pass --url, set {variable} or run `rollout-control login`": (
        "kein Server: gib --url an, setze {variable} oder führe `rollout-control login` aus"
    ),
    "not logged in to {url}: run `rollout-control login` or set {variable}": (
        "nicht bei {url} angemeldet: führe `rollout-control login` aus oder setze {variable}"
    ),
    "no answer to the confirmation: pass --yes to act without asking": (
        "keine Antwort auf die Rückfrage: gib --yes an, um ohne Rückfrage zu handeln"
    ),
    "nothing was done": "es wurde nichts getan",
    "cannot read {path}: {error}": "{path} kann nicht gelesen werden: {error}",
    "Warning: {path} holds a token and others may read it (mode {mode}); run: chmod 600 {path}": (
        "Warnung: {path} enthält ein Token und andere dürfen es lesen (Modus {mode}); führe aus: "
        "chmod 600 {path}"
    ),
    "{path} is not JSON: run `rollout-control login` again": (
        "{path} ist kein JSON: führe `rollout-control login` erneut aus"
    ),
    "{what} is still {state} after {seconds} s; stopped waiting": (
        "{what} ist nach {seconds} s noch {state}; das Warten wurde beendet"
    ),
    # output.py
    "yes": "ja",
    "no": "nein",
    "emergency stop (all to proxy; {percent}% {tag})": (
        "NOT-AUS (alles zum Proxy; {percent}% {tag})"
    ),
    # controls.py
    "nothing is desired yet: name the tag with --tag": (
        "noch ist nichts als Soll gesetzt: nenne das Tag mit --tag"
    ),
    "{environment}: {old}% → {new}%, tag {tag}": "{environment}: {old}% → {new}%, Tag {tag}",
    "{question} (a raise: a second person must approve it)": (
        "{question} (eine Erhöhung: eine zweite Person muss sie genehmigen)"
    ),
    "{question}. Go ahead?": "{question}. Fortfahren?",
    "Request {id}: {percent}% {tag} waits for a second person: rollout-control approve {id}": (
        "Anfrage {id}: {percent}% {tag} wartet auf eine zweite Person: rollout-control approve {id}"
    ),
    "Approve {request}?": "{request} genehmigen?",
    "Reject {request}?": "{request} ablehnen?",
    "Request {id} rejected: nothing changes.": "Anfrage {id} abgelehnt: nichts ändert sich.",
    "{environment}: EMERGENCY STOP — 100% of traffic to proxy at once (now {settings}). Go "
    "ahead?": (
        "{environment}: NOT-AUS — 100% des Traffics sofort zum Proxy (jetzt {settings}). "
        "Fortfahren?"
    ),
    "lift the emergency stop: traffic follows the percent again": (
        "NOT-AUS aufheben: der Traffic folgt wieder dem Prozentsatz"
    ),
    "roll back to 0% native (clients with a native cookie stay native up to 24 h)": (
        "auf 0% native zurückrollen (Clients mit einem Native-Cookie bleiben bis zu 24 h native)"
    ),
    "{environment}: {what} (now {settings}). Go ahead?": (
        "{environment}: {what} (jetzt {settings}). Fortfahren?"
    ),
    "change {id}": "Änderung {id}",
    "change v{version}: {state}": "Änderung v{version}: {state}",
    "Change {id}: {kind}, version {version}, {state}.": (
        "Änderung {id}: {kind}, Version {version}, {state}."
    ),
    "change {id} failed: see its environment's page": (
        "Änderung {id} ist fehlgeschlagen: siehe die Seite ihrer Umgebung"
    ),
    "change {id} was overtaken by a newer change": (
        "Änderung {id} wurde von einer neueren Änderung überholt"
    ),
    "{environment}: {percent}% {tag}, requested by {by} ({reason})": (
        "{environment}: {percent}% {tag}, angefragt von {by} ({reason})"
    ),
    "no reason": "kein Grund",
    "{environment}: version {version} reported deployed.": (
        "{environment}: Version {version} als deployt gemeldet."
    ),
    # status.py
    "Environment": "Umgebung",
    "Desired": "Soll",
    "KV": "KV",
    "Edge": "Edge",
    "Drift": "Drift",
    "Phase": "Phase",
    "Waiting": "Wartend",
    "read {when}": "gelesen {when}",
    "Waiting for a second person (rollout-control approve ID / reject ID)": (
        "Wartet auf eine zweite Person (rollout-control approve ID / reject ID)"
    ),
    "Request": "Anfrage",
    "Percent": "Prozent",
    "Tag": "Tag",
    "Requested by": "Angefragt von",
    "At": "Um",
    "Reason": "Grund",
    "Changes not yet in effect": "Noch nicht wirksame Änderungen",
    "Change": "Änderung",
    "Kind": "Art",
    "Version": "Version",
    "State": "Zustand",
    "Requested at": "Angefragt um",
    "nothing desired yet": "noch kein Soll",
    "window ends {when}": "Fenster endet {when}",
    # login.py
    "Dashboard URL": "URL des Dashboards",
    "API token": "API-Token",
    "Logged in to {url} as {who}.": "Bei {url} angemeldet als {who}.",
    "Token stored in {path} (readable by you only).": (
        "Token in {path} gespeichert (nur für dich lesbar)."
    ),
    "Removed {path}. Revoke the token on the dashboard if it may have leaked.": (
        "{path} entfernt. Widerrufe das Token im Dashboard, falls es nach außen gelangt sein "
        "könnte."
    ),
    "No token was stored.": "Es war kein Token gespeichert.",
    "{who} at {url}": "{who} bei {url}",
    "Roles: {roles}": "Rollen: {roles}",
    "Permissions: {permissions}": "Berechtigungen: {permissions}",
    "none": "keine",
    "no token given: paste the token shown once on the API tokens page": (
        "kein Token angegeben: füge das Token ein, das die Seite API-Tokens einmal gezeigt hat"
    ),
    "{user} (token {name}, {kind}, expires {when})": (
        "{user} (Token {name}, {kind}, läuft ab {when})"
    ),
    "{user} (token {name}, {kind}, never expires)": "{user} (Token {name}, {kind}, läuft nie ab)",
    # phases.py
    "Pre-flight": "Pre-Flight",
    "Item": "Punkt",
    "OK": "OK",
    "Detail": "Detail",
    "The server will refuse: {refusal}": "Der Server wird ablehnen: {refusal}",
    "{environment}: start {phase} at {percent}%?": "{environment}: {phase} mit {percent}% starten?",
    "Phase {phase} at {percent}%: phase run {id}.": (
        "Phase {phase} mit {percent}%: Phasenlauf {id}."
    ),
    "The raise waits for a second person: rollout-control approve {id}": (
        "Die Erhöhung wartet auf eine zweite Person: rollout-control approve {id}"
    ),
    "Phase run {id}": "Phasenlauf {id}",
    "Decision {id}": "Entscheidung {id}",
    "{count} entries": "{count} Einträge",
    # preview.py
    "Preview run {id} for build {build}: {state}.": "Preview-Lauf {id} für Build {build}: {state}.",
    "Follow it: {url}": "Verfolgen: {url}",
    "preview run {id}": "Preview-Lauf {id}",
    "{state}: {done}/{total} checks": "{state}: {done}/{total} Prüfungen",
    "{line}, now {running}": "{line}, gerade {running}",
    "Preview run {id} — build {build}": "Preview-Lauf {id} — Build {build}",
    "Check": "Prüfung",
    "{state}: {verdict}": "{state}: {verdict}",
    "no verdict": "kein Ergebnis",
    "Report: {url}": "Bericht: {url}",
    "preview run {id} failed: NO-GO for build {build}": (
        "Preview-Lauf {id} fehlgeschlagen: NO-GO für Build {build}"
    ),
    "preview run {id} ended in {state}: no verdict": (
        "Preview-Lauf {id} endete mit {state}: kein Ergebnis"
    ),
    "preview run {id} is still {state}: no verdict yet": (
        "Preview-Lauf {id} ist noch {state}: noch kein Ergebnis"
    ),
    # audit.py
    "{value} is neither a date/time (2025-11-12T14:30) nor 30m, 2h, 7d": (
        "{value} ist weder ein Datum/eine Uhrzeit (2025-11-12T14:30) noch 30m, 2h, 7d"
    ),
    "Actor": "Wer",
    "Action": "Aktion",
    "Outcome": "Ergebnis",
    "(more than {limit} entries: raise --limit or narrow --since)": (
        "(mehr als {limit} Einträge: erhöhe --limit oder grenze --since ein)"
    ),
    # environments.py
    "{reference} is not SERVICE/ENVIRONMENT (e.g. pix-immo-api/production)": (
        "{reference} ist nicht SERVICE/UMGEBUNG (z. B. pix-immo-api/production)"
    ),
    "name an environment, e.g. production": "nenne eine Umgebung, z. B. production",
    "the server has no service yet": "der Server hat noch keinen Service",
    "there are several services ({services}): name one, e.g. {example}": (
        "es gibt mehrere Services ({services}): nenne einen, z. B. {example}"
    ),
}
