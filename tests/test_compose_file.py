"""docker-compose.yml and .env.example agree with each other and with the repository.

Where the docker compose plugin exists, `docker compose config` validates the file whole;
everywhere the file is read with PyYAML and its services, variables and commands are checked.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = {"migrate", "web", "worker", "beat"}


def compose():
    return yaml.safe_load(COMPOSE.read_text())


def example_variables():
    return {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"[A-Z][A-Z0-9_]*=", line)
    }


def has_compose_plugin():
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


def test_the_full_stack_services_are_there():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis"} | APP_SERVICES
    for name in APP_SERVICES:
        assert services[name]["env_file"] == [".env"], name
        assert set(services[name]["depends_on"]) <= set(services), name
    assert (ROOT / compose()["x-app"]["build"] / "Dockerfile").is_file()


def test_every_variable_compose_uses_is_in_the_env_example():
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()))
    assert used, "docker-compose.yml reads no variable at all"
    assert used <= example_variables()


def test_every_variable_of_the_env_example_is_read_by_someone():
    settings = (ROOT / "config" / "settings.py").read_text()
    compose_text = COMPOSE.read_text()
    unread = {
        name
        for name in example_variables()
        if f'"{name}"' not in settings and "${" + name not in compose_text
    }
    assert not unread


def test_the_commands_name_files_that_exist():
    for name in APP_SERVICES:
        command = compose()["services"][name]["command"]
        for index, word in enumerate(command):
            if word.endswith(".py"):
                assert (ROOT / word).is_file(), f"{name}: {word}"
            if index and command[index - 1] == "-A":
                assert (ROOT / word / "celery.py").is_file(), f"{name}: celery app {word}"
            if command[0] == "gunicorn" and index == 1:
                assert (ROOT / (word.replace(".", "/") + ".py")).is_file(), f"{name}: {word}"


@pytest.mark.skipif(not has_compose_plugin(), reason="the docker compose plugin is not installed")
def test_docker_compose_config_accepts_the_file(tmp_path):
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--project-directory", str(tmp_path),
         "--env-file", str(ENV_EXAMPLE), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
