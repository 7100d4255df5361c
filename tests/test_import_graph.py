"""The apps depend on each other in one direction only: an import cycle between two apps (even a
function-local import that hides it from Python) fails here, naming the cycle and the imports
that make it.

The graph is read from the source with ``ast``: every import, at module level or inside a
function, except those under ``if TYPE_CHECKING:`` and in migrations (which name the models of
other apps by design).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# config wires every app together (URLs, Celery) and is no app of its own: left out.
APPS = (
    "integrations",
    "outbox",
    "monitoring",
    "metrics",
    "rollout",
    "slack_actions",
    "edge_standin",
    "api",
)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_modules(tree: ast.AST, module: str, is_package: bool):
    """Absolute names of every module ``module`` imports (relative imports resolved)."""
    package = module if is_package else module.rpartition(".")[0]
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                yield ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.module
        stack.extend(ast.iter_child_nodes(node))


def app_imports() -> dict[tuple[str, str], list[str]]:
    """(importing app, imported app) → the files that make the edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            parts = list(relative.with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            tree = ast.parse(path.read_text(), filename=str(path))
            for name in _imported_modules(tree, ".".join(parts), is_package):
                target = name.split(".")[0]
                if target in APPS and target != app:
                    edges.setdefault((app, target), []).append(str(relative))
    return edges


def cycles(edges) -> list[list[str]]:
    """Every strongly connected group of more than one app (Tarjan), each as a closed path."""
    graph = {app: sorted({b for a, b in edges if a == app}) for app in APPS}
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(app):
        index[app] = low[app] = len(index)
        stack.append(app)
        on_stack.add(app)
        for other in graph[app]:
            if other not in index:
                visit(other)
                low[app] = min(low[app], low[other])
            elif other in on_stack:
                low[app] = min(low[app], index[other])
        if low[app] == index[app]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == app:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for app in APPS:
        if app not in index:
            visit(app)
    return found


def test_the_graph_sees_imports_inside_functions_and_skips_type_checking():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rollout.models import Environment\n"
        "def f():\n    from .notify import queue\n    import metrics.alerts\n"
    )
    found = set(_imported_modules(tree, "outbox.tasks", is_package=False))
    assert found == {"typing", "outbox.notify", "metrics.alerts"}
    assert cycles({("rollout", "metrics"): ["x"], ("metrics", "rollout"): ["y"]}) == [
        ["metrics", "rollout"]
    ]


def test_no_import_cycle_between_the_apps():
    edges = app_imports()
    found = cycles(edges)
    described = []
    for group in found:
        through = [
            f"  {a} → {b}: {', '.join(sorted(set(files)))}"
            for (a, b), files in sorted(edges.items())
            if a in group and b in group
        ]
        described.append(" <-> ".join(group) + "\n" + "\n".join(through))
    assert not found, "import cycle between apps:\n" + "\n".join(described)


def test_the_outbox_depends_on_no_app_but_integrations():
    assert {b for a, b in app_imports() if a == "outbox"} <= {"integrations"}


def test_no_app_imports_the_api():
    """The token API sits above every app: it calls their services, none of them calls it."""
    assert not {a for a, b in app_imports() if b == "api"}


def test_rollout_builds_on_no_app_above_it():
    """monitoring and metrics build on rollout; rollout reaches them only through its signals
    and the measurements metrics hands it (docs/architecture.md)."""
    assert {b for a, b in app_imports() if a == "rollout"} <= {"integrations", "outbox"}


def test_no_app_builds_on_acting_from_slack():
    """slack_actions sits on top: it calls rollout's services, and nothing calls it but Slack
    (through config's URLs and Celery)."""
    assert not {a for a, b in app_imports() if b == "slack_actions" and a != "slack_actions"}
