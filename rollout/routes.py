"""The URLs of every app's pages about one object: ``<kind>/<its public id>/<rest>``.

Public ids are UUIDs in URLs; each app lists its pages as a table of (kind, rest, view, name).
"""

from django.urls import path


def object_pages(pages: list[tuple]) -> list:
    """A URL pattern for each (kind, rest, view, name) of ``pages``; an empty kind puts the
    public id first."""
    return [
        path(f"{kind}/<uuid:public_id>/{rest}".lstrip("/"), view, name=name)
        for kind, rest, view, name in pages
    ]
