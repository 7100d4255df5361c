"""The client's own words follow the language of its environment, as the server's do: every
message it says has its German in rollout_control_cli/words.py, with the same placeholders."""

import ast
from string import Formatter

from rollout_control_cli.words import GERMAN
from tests.support.cli import ROOT, cli_env, run_cli


def said_messages() -> dict[str, str]:
    """Every message the client passes to ``_`` or ``N_`` as written, and where."""
    found = {}
    for path in sorted((ROOT / "rollout_control_cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "N_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found[node.args[0].value] = f"{path.name}:{node.lineno}"
    return found


def placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(message) if name is not None}


def test_the_german_table_says_every_message_with_the_same_placeholders():
    said = said_messages()

    assert len(said) > 100
    missing = {message: where for message, where in said.items() if message not in GERMAN}
    assert not missing, f"messages without German: {missing}"
    assert not set(GERMAN) - set(said), "German for messages the client no longer says"
    for message, german in GERMAN.items():
        assert placeholders(german) == placeholders(message), message


def test_a_command_says_its_own_words_in_the_environment_s_language(tmp_path):
    for language, said in (
        ("C.UTF-8", "No token was stored."),
        ("de_DE.UTF-8", "Es war kein Token gespeichert."),
    ):
        result = run_cli("logout", env=cli_env(tmp_path, language=language))

        assert result.code == 0, result.stderr
        assert result.stdout.strip() == said


def test_an_error_of_the_client_s_own_in_german(tmp_path):
    result = run_cli("status", env=cli_env(tmp_path, language="de_DE.UTF-8"))

    assert result.code == 2
    assert result.stderr.strip() == (
        "Error: kein Server: gib --url an, setze ROLLOUT_CONTROL_URL oder führe "
        "`rollout-control login` aus"
    )
