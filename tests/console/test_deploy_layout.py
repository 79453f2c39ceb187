"""The container files agree with console/processes.py and hold no secret.

compose.yaml, the Dockerfile and .env.production.example cannot be run here (no container
engine), so they are read: the commands are console.processes' lists, the health checks its
paths, the start order release-after-db and web/worker-after-release, the image non-root with
its static files collected at build, and every setting production needs is in the example,
which holds only placeholders. The build's collectstatic step and the filled-in example's
`check --deploy` are run for real. No database: plain functions, on SQLite and PostgreSQL runs.
"""

import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml

from console import processes
from tests.console.test_check_deploy import TEST_ONLY, production_env, run_check

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.production.example"
PLACEHOLDER = "change-me"
# A name that holds a credential: its value is a placeholder in the example, absent elsewhere.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|PASSKEY|_KEY\b|CONSUMER_KEY|CREDENTIAL")
# NAME=value or NAME: value, for a credential-like NAME with a literal (not $-expanded) value.
SECRET_LITERAL = re.compile(
    r"\b([A-Z][A-Z0-9_]*(?:SECRET|PASSWORD|TOKEN|PASSKEY|_KEY)[A-Z0-9_]*)\s*[=:]\s*(?!\$)([^\s\"',;}]+)"
)


# --- Reading the files ---------------------------------------------------------------------------
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict:
    return compose()["services"][name]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction: continuations joined, comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), " ".join(args.split())))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not NAME=value: {line!r}"
            assert name not in values, f"{name} twice"
            values[name.strip()] = value
    return values


def yaml_list(text: str) -> list:
    return yaml.safe_load(text)


# --- Commands and health checks are console/processes.py's ---------------------------------------
@pytest.mark.parametrize(
    ("name", "command"),
    [("release", processes.RELEASE), ("web", processes.WEB), ("worker", processes.WORKER)],
)
def test_each_service_runs_the_named_process(name, command):
    assert service(name)["command"] == command


def test_web_health_check_is_readiness():
    test = service("web")["healthcheck"]["test"]
    assert test[0] == "CMD" and processes.HEALTH_READY in test


def test_worker_has_its_own_health_check_and_release_none():
    # The image's HEALTHCHECK probes gunicorn: the worker serves no HTTP, the release exits.
    assert service("worker")["healthcheck"]["test"] == ["CMD", "python", "manage.py", "worker_alive"]
    assert service("release")["healthcheck"] == {"disable": True}


def test_db_health_check_is_pg_isready():
    test = service("db")["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test)


def test_start_order():
    depends = {name: spec.get("depends_on", {}) for name, spec in compose()["services"].items()}
    assert depends["release"] == {"db": {"condition": "service_healthy"}}
    for name in ("web", "worker"):
        assert depends[name]["release"] == {"condition": "service_completed_successfully"}
        assert depends[name]["db"] == {"condition": "service_healthy"}
    assert depends["db"] == {}
    assert service("release")["restart"] == "no"  # a one-shot: restarting it would loop forever


def test_app_services_share_one_image_and_the_env_file():
    for name in ("release", "web", "worker"):
        spec = service(name)
        assert spec["image"] == "tillbook:latest" and spec["build"] == "."
        assert spec["env_file"] == ".env.production"
    assert service("db")["env_file"] == ".env.production"
    assert service("db")["image"] == "postgres:15"
    assert "pgdata:/var/lib/postgresql/data" in service("db")["volumes"]


def test_web_is_published_on_loopback_only():
    # A TLS proxy on the host forwards to it; plain HTTP from outside never reaches gunicorn.
    assert service("web")["ports"] == ["127.0.0.1:8000:8000"]


# --- The Dockerfile ------------------------------------------------------------------------------
def test_dockerfile_cmd_is_the_web_process():
    cmds = [args for keyword, args in dockerfile() if keyword == "CMD"]
    assert len(cmds) == 1
    assert yaml_list(cmds[0]) == processes.WEB  # JSON exec form: no shell in between


def test_dockerfile_bases_are_pinned_python_311_slim():
    bases = [args.split()[0] for keyword, args in dockerfile() if keyword == "FROM"]
    assert bases and all(base == "python:3.11-slim-bookworm" for base in bases)


def test_dockerfile_runs_as_a_non_root_user_set_before_cmd():
    stage = final_stage()
    keywords = [keyword for keyword, _ in stage]
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert max(i for i, k in enumerate(keywords) if k == "USER") < keywords.index("CMD")
    assert "--uid 10001" in " ".join(args for keyword, args in stage if keyword == "RUN")


def test_dockerfile_health_check_is_liveness_through_the_probe():
    checks = [args for keyword, args in final_stage() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    command = yaml_list(checks[0].split(" CMD ", 1)[1])
    assert command == ["python", "-m", "console.probe", processes.HEALTH_LIVE]


def collectstatic_run() -> str:
    runs = [args for keyword, args in final_stage() if keyword == "RUN" and "collectstatic" in args]
    assert len(runs) == 1, "one RUN collects the static files at build"
    return runs[0]


def build_env() -> dict[str, str]:
    """The NAME=value pairs the collectstatic RUN gives `env` (only for that command)."""
    words = shlex.split(collectstatic_run().split("&&")[0])
    assert words[0] == "env"
    pairs = {}
    for word in words[1:]:
        if "=" not in word:
            assert words[words.index(word) :][:4] == ["python", "manage.py", "collectstatic", "--noinput"]
            break
        name, _, value = word.partition("=")
        pairs[name] = value
    return pairs


def test_collectstatic_at_build_gets_a_throwaway_key_only_for_that_command():
    pairs = build_env()
    assert pairs["DEBUG"] == "false"  # so the manifest storage is the one collected for
    assert pairs["SECRET_KEY"].startswith("build-only")
    persisted = " ".join(args for keyword, args in dockerfile() if keyword in ("ENV", "ARG"))
    assert not SECRET_NAME.search(persisted), "no secret in ENV or ARG: both persist in the image"


def test_the_build_collectstatic_works_without_a_database(tmp_path):
    # The same command with the same environment, only the static root moved to a temp dir.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)} | build_env()
    env["STATIC_ROOT"] = str(tmp_path / "static")
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()  # whitenoise's manifest
    assert not (tmp_path / "build-only.sqlite3").exists()


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for entry in (
        ".git",
        ".venv/",
        "db.sqlite3*",
        "media/",
        "tests/",
        ".hypothesis/",
        "**/__pycache__/",
        ".env",
        ".env.*",
        ".dev-secret-key",
        "staticfiles/",
    ):
        assert entry in ignored, entry


# --- Settings and secrets ------------------------------------------------------------------------
def compose_variables() -> set[str]:
    """Every variable compose.yaml expands (${X}, $X) or passes through ($${X} to a shell)."""
    text = COMPOSE.read_text()
    names = set(re.findall(r"\$\$?\{?([A-Za-z_][A-Za-z0-9_]*)", text))
    for spec in compose()["services"].values():
        environment = spec.get("environment") or {}
        names |= set(environment) if isinstance(environment, dict) else {e.split("=")[0] for e in environment}
    return names


def test_every_variable_compose_names_is_in_the_example():
    assert compose_variables() <= set(example())
    assert {"POSTGRES_USER", "POSTGRES_DB"} <= compose_variables()  # the check reads the file


def test_the_example_names_every_setting_production_needs(tmp_path):
    with mock.patch.dict(os.environ, {}, clear=True):  # only what the check-deploy test sets
        needed = set(production_env(tmp_path)) - {"DJANGO_SETTINGS_MODULE", "STATIC_ROOT"}
    assert {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "STK_CALLBACK_TOKEN"} <= needed
    needed |= {"DATABASE_URL", "CACHE_URL", "WEB_CONCURRENCY", "Q_WORKERS", "POSTGRES_PASSWORD"}
    assert needed <= set(example())
    assert "STATIC_ROOT" not in example()  # collected into the image's default at build
    assert "MEDIA_ROOT" not in example()  # the media volume is mounted at the default


def test_compose_writes_no_secret():
    assert SECRET_LITERAL.findall(COMPOSE.read_text()) == []


def test_dockerfile_writes_no_secret():
    # The one credential-like value is collectstatic's throwaway key, set for that RUN alone.
    found = [
        f"{name}={value}"
        for keyword, args in dockerfile()
        for name, value in SECRET_LITERAL.findall(args)
        if not (keyword == "RUN" and args == collectstatic_run() and value.startswith("build-only"))
    ]
    assert found == []


def test_compose_sets_no_secret_itself():
    for name, spec in compose()["services"].items():
        environment = spec.get("environment") or {}
        names = environment if isinstance(environment, dict) else [e.split("=")[0] for e in environment]
        assert not [n for n in names if SECRET_NAME.search(n)], name


def test_example_holds_only_placeholders():
    values = example()
    for name, value in values.items():
        if SECRET_NAME.search(name):
            assert value in ("", PLACEHOLDER), name
        for word in re.split(r"[^A-Za-z0-9_-]+", value):
            assert len(word) < 24, f"{name}: {word!r} looks like a generated secret"
    database = urlsplit(values["DATABASE_URL"])
    assert database.password == PLACEHOLDER == values["POSTGRES_PASSWORD"]
    assert (database.hostname, database.username) == ("db", values["POSTGRES_USER"])
    assert database.path == "/" + values["POSTGRES_DB"]
    assert values["DEBUG"] == "false"


def test_the_real_env_file_is_never_committed():
    result = subprocess.run(
        ["git", "check-ignore", "-q", ".env.production"], cwd=ROOT, capture_output=True, timeout=30
    )
    assert result.returncode == 0, ".env.production must be git-ignored"
    kept = subprocess.run(
        ["git", "check-ignore", "-q", ".env.production.example"], cwd=ROOT, capture_output=True, timeout=30
    )
    assert kept.returncode == 1


def example_env(fill: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY and not k.startswith("PYTEST")}
    env |= {"DJANGO_SETTINGS_MODULE": "console.settings"} | example()
    if fill:  # what the operator does: a fresh secret for every change-me
        env = {k: v.replace(PLACEHOLDER, secrets.token_urlsafe(50)) for k, v in env.items()}
    return env


def test_the_filled_in_example_passes_check_deploy():
    result = run_check(example_env(fill=True))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_the_example_as_it_stands_fails_check_deploy():
    # Forgetting to replace a placeholder is caught before the release step, not in production.
    result = run_check(example_env(fill=False))
    assert result.returncode != 0 and "STK_CALLBACK_TOKEN" in result.stderr
