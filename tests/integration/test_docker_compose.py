"""docker-compose.yml and the Dockerfile, checked without Docker (it cannot run on our machines).

What can break a landlord's `docker compose up` before any container starts is checked here: the
file parses, references resolve, bind mounts exist, every Airflow service runs the image built
from our Dockerfile with the same constraints as CI, and the settings the DAGs read are present.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
AIRFLOW_COMMANDS = ("api-server", "scheduler", "dag-processor", "triggerer")
LONG_RUNNING_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# Generated from a working install (the Makefile's pins); may be absent in a fresh checkout.
GENERATED = {"constraints.txt"}

_VAR = re.compile(r"\$\{(\w+)(?::?-((?:[^{}]|\{[^{}]*\})*))?\}")


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set in the environment: the default."""
    return _VAR.sub(lambda m: m.group(2) or "", value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE.open() as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services built from our Dockerfile: the Airflow components and one-off jobs."""
    return {name: s for name, s in services.items() if "build" in s}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _interpolate(str(v)) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    return {name: {} for name in deps} if isinstance(deps, list) else deps


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) of each volume entry, short or long syntax."""
    out = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            out.append((entry.get("type", "volume"), entry.get("source", ""), entry["target"]))
            continue
        source, target = entry.split(":")[:2]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        out.append((kind, source, target))
    return out


def test_compose_parses_with_a_shared_airflow_anchor(compose: dict[str, Any]) -> None:
    assert isinstance(compose.get("services"), dict) and compose["services"]
    assert "x-airflow-common" in compose
    assert "&airflow-common" in COMPOSE.read_text()


def test_every_dependency_is_a_service_with_a_valid_condition(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dep, spec in _depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert dep != name
            condition = (spec or {}).get("condition", "service_started")
            assert condition in LONG_RUNNING_CONDITIONS, (name, dep, condition)
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no check"


def test_bind_mounts_exist_and_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    checked = 0
    for name, service in compose["services"].items():
        for kind, source, target in _mounts(service):
            if kind == "bind":
                assert not Path(source).is_absolute(), f"{name}: host path {source} ties the stack to one machine"
                path = (COMPOSE.parent / source).resolve()
                assert path.exists(), f"{name}: bind mount {source} -> {target} does not exist"
                checked += 1
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    assert checked >= 4


def test_airflow_components_are_all_there(services: dict[str, dict[str, Any]]) -> None:
    airflow = _airflow_services(services)
    commands = {_command(s) for s in airflow.values()}
    for component in AIRFLOW_COMMANDS:
        assert component in commands, f"no service runs airflow {component}"
    init = services["airflow-init"]
    assert init.get("restart") == "no"
    # The init script migrates the metadata database and sets up the admin user.
    script = ROOT / "docker" / "airflow" / "init.sh"
    assert "init.sh" in _command(init)
    text = script.read_text()
    assert "airflow db migrate" in text and "AIRFLOW_ADMIN_PASSWORD" in text
    for name, service in airflow.items():
        if _command(service) in AIRFLOW_COMMANDS:
            assert _depends_on(service)["airflow-init"]["condition"] == "service_completed_successfully", name
            assert _depends_on(service)["postgres"]["condition"] == "service_healthy", name
            assert "healthcheck" in service, name


def test_every_airflow_service_uses_the_image_built_from_our_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    airflow = _airflow_services(services)
    assert {"airflow-init", "airflow-apiserver", "airflow-scheduler"} <= set(airflow)
    images = set()
    for name, service in airflow.items():
        build = service["build"]
        context = COMPOSE.parent / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context / dockerfile).resolve() == DOCKERFILE, name
        images.add(_interpolate(service["image"]))
    assert len(images) == 1
    # Every service that looks like Airflow is one of ours (no stray stock apache/airflow image).
    for name, service in services.items():
        assert "apache/airflow" not in str(service.get("image", "")), name


def test_dockerfile_installs_the_package_with_the_ci_constraints() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0] == "FROM apache/airflow:3.3.2-python3.11"
    pip = [line for line in instructions if "pip install" in line]
    assert pip and all("-c constraints.txt" in line for line in pip)
    # The package itself, with the extras the compose celery profile and s3:// output folders need.
    assert any(line.endswith(" '.[celery,s3]'") for line in pip), "the package itself must be installed"
    copies = [shlex.split(line)[1:] for line in instructions if line.startswith("COPY ")]
    sources = [arg for args in copies for arg in args[:-1] if not arg.startswith("--")]
    assert "constraints.txt" in sources and "pyproject.toml" in sources and "src/" in sources
    for source in sources:
        if "*" in source or source in GENERATED:
            continue
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_airflow_environment(services: dict[str, dict[str, Any]]) -> None:
    for name, service in _airflow_services(services).items():
        env = _env(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW_VAR_CAUTIONFLOW_CONFIG"] == "/opt/airflow/include/config/cautionflow.yaml", name
        assert env["CAUTIONFLOW_HOME"] == "/opt/airflow", name
        assert env["AIRFLOW_CONN_CAUTIONFLOW_REGISTER"].startswith("postgresql://"), name
        assert "@postgres:5432/cautionflow_register" in env["AIRFLOW_CONN_CAUTIONFLOW_REGISTER"], name
        assert env["AIRFLOW_CONN_CAUTIONFLOW_SMTP"].startswith("smtp://mailpit:1025"), name
        assert "example.org" in env["AIRFLOW_CONN_CAUTIONFLOW_SMTP"], name  # reserved domain only
        # Components sign each other's tokens: one secret for all.
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"], name
        mounts = {target: (kind, source) for kind, source, target in _mounts(service)}
        assert mounts["/opt/airflow/var"] == ("volume", "cautionflow-var"), name
        assert mounts["/opt/airflow/include"][0] == "bind", name  # config, SQL and templates, whole
        assert mounts["/opt/airflow/dags"][0] == "bind", name


def test_config_variable_points_into_a_mounted_folder(services: dict[str, dict[str, Any]]) -> None:
    scheduler = services["airflow-scheduler"]
    config = Path(_env(scheduler)["AIRFLOW_VAR_CAUTIONFLOW_CONFIG"])
    for kind, source, target in _mounts(scheduler):
        if kind == "bind" and config.is_relative_to(target):
            host = (COMPOSE.parent / source / config.relative_to(target).parent).resolve()
            assert host.is_dir(), host
            return
    pytest.fail(f"{config} is not inside any bind mount")


def test_postgres_creates_both_databases(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert "healthcheck" in postgres
    init = [source for kind, source, target in _mounts(postgres) if target == "/docker-entrypoint-initdb.d"]
    assert init, "no init scripts mounted into /docker-entrypoint-initdb.d"
    scripts = sorted((COMPOSE.parent / init[0]).glob("*.sh")) + sorted((COMPOSE.parent / init[0]).glob("*.sql"))
    text = "\n".join(p.read_text() for p in scripts)
    assert "CREATE DATABASE airflow" in text
    assert "CREATE DATABASE cautionflow_register" in text
    env = _env(postgres)
    assert env["AIRFLOW_DB_PASSWORD"] and env["REGISTER_DB_PASSWORD"]


def test_staging_mail_goes_to_a_catcher(services: dict[str, dict[str, Any]]) -> None:
    mailpit = services["mailpit"]
    assert str(mailpit["image"]).startswith("axllent/mailpit:")
    assert "healthcheck" in mailpit


def test_helper_scripts_are_executable() -> None:
    for script in (ROOT / "docker").rglob("*.sh"):
        assert script.stat().st_mode & 0o111, f"{script} is not executable"
        assert script.read_text().startswith("#!/usr/bin/env bash"), script


def test_the_staging_smtp_connection_means_clear_text_to_mailpit_from_the_right_sender(services) -> None:
    """The compose file's exact `cautionflow_smtp` URI, parsed by Airflow as a task would get it and read
    with the Airflow SMTP provider's conventions (issue 12): no TLS (Mailpit speaks none) and the
    provider's `from_email` as the sender, with the config file's display name kept."""
    from airflow.sdk import Connection

    from cautionflow.adapters.mail import SmtpSettings
    from cautionflow.config import SmtpConfig
    from cautionflow.integrations.airflow.settings import smtp_overrides_from_connection

    example = yaml.safe_load((ROOT / "include/config/cautionflow.example.yaml").read_text())["smtp"]
    for name, service in _airflow_services(services).items():
        uri = _env(service)["AIRFLOW_CONN_CAUTIONFLOW_SMTP"]
        conn = Connection.from_uri(uri, conn_id="cautionflow_smtp")

        settings = SmtpSettings.from_config(
            SmtpConfig.model_validate(example), overrides=smtp_overrides_from_connection(conn, conn.extra_dejson),
            environ={},
        )

        assert (settings.host, settings.port, settings.security) == ("mailpit", 1025, "none"), name
        assert settings.sender == "Example Homes <cautions@example.org>", name


# --- the celery profile (issue 17): Redis and two Celery workers beside the LocalExecutor default ---

ENV_EXAMPLE = ROOT / "docker" / "env.example"
_NAMED = re.compile(r"\$\{(\w+)")


def _interpolate_with(value: str, settings: dict[str, str]) -> str:
    """Compose's ${VAR:-default} with `settings` as the .env file: the setting, else the default."""
    return _VAR.sub(lambda m: settings.get(m.group(1)) or m.group(2) or "", value).replace("$$", "$")


def _started(services: dict[str, dict[str, Any]], *profiles: str) -> set[str]:
    """The services `docker compose --profile P ... up` starts: those without profiles, and those
    with a profile named."""
    return {name for name, s in services.items() if not s.get("profiles") or set(s["profiles"]) & set(profiles)}


def _commented_settings(path: Path) -> dict[str, str]:
    """`# NAME=value` lines of an env file: the settings it documents but leaves off."""
    found = re.findall(r"^# ?([A-Z][A-Z0-9_]*)=(\S*)$", path.read_text(), flags=re.MULTILINE)
    return dict(found)


def test_the_default_stack_has_no_worker_and_no_redis(services: dict[str, dict[str, Any]]) -> None:
    default = _started(services)
    assert {"postgres", "mailpit", "airflow-apiserver", "airflow-scheduler"} <= default
    assert "redis" not in default
    assert not any("celery" in _command(services[name]) for name in default), default
    assert not any("redis" in str(services[name].get("image", "")) for name in default), default


def test_the_celery_profile_adds_redis_and_two_workers_of_the_common_image_and_env(
    services: dict[str, dict[str, Any]],
) -> None:
    added = _started(services, "celery") - _started(services)
    assert added == {"redis", "airflow-worker"}
    redis, worker, scheduler = services["redis"], services["airflow-worker"], services["airflow-scheduler"]
    assert str(redis["image"]).startswith("redis:") and "healthcheck" in redis
    assert _command(worker) == "celery worker"
    assert worker["deploy"]["replicas"] == 2
    # The x-airflow-common anchor's: same image and build, same environment (but Celery's warm
    # shutdown switch), same mounts, so a worker runs tasks exactly as the scheduler would.
    assert worker["image"] == scheduler["image"] and worker["build"] == scheduler["build"]
    worker_env = _env(worker)
    assert worker_env.pop("DUMB_INIT_SETSID") == "0"
    assert worker_env == _env(scheduler)
    assert sorted(_mounts(worker)) == sorted(_mounts(scheduler))
    assert ("volume", "cautionflow-var", "/opt/airflow/var") in _mounts(worker)
    deps = _depends_on(worker)
    assert deps["redis"]["condition"] == "service_healthy"
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    assert deps["airflow-apiserver"]["condition"] == "service_healthy"  # tasks report through it
    assert "celery@$${HOSTNAME}" in str(worker["healthcheck"]["test"])


def test_celery_settings_default_to_the_profiles_redis_and_the_metadata_database(
    services: dict[str, dict[str, Any]],
) -> None:
    assert 6379 in services["redis"]["expose"] and "ports" not in services["redis"]  # the compose network only
    for name, service in _airflow_services(services).items():
        env = _env(service)
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://airflow:"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@postgres:5432/airflow"), name


def test_env_example_switches_every_component_to_celery_with_the_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    """A profile cannot change other services' environment: the executor comes from .env, and
    env.example documents the two lines together, by the names the compose file reads."""
    documented = _commented_settings(ENV_EXAMPLE)
    assert documented["COMPOSE_PROFILES"] == "celery"
    raw = services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"]
    [variable] = _NAMED.findall(raw)
    assert documented[variable] == "CeleryExecutor"
    for name, service in _airflow_services(services).items():
        executor = _interpolate_with(str(service["environment"]["AIRFLOW__CORE__EXECUTOR"]), documented)
        assert executor == "CeleryExecutor", name
        assert _interpolate(str(service["environment"]["AIRFLOW__CORE__EXECUTOR"])) == "LocalExecutor", name
    assert "shared_storage: true" in ENV_EXAMPLE.read_text()


def test_flower_is_optional_and_listens_on_this_host_only(services: dict[str, dict[str, Any]]) -> None:
    flower = services["flower"]
    assert flower["profiles"] == ["flower"]
    assert "flower" not in _started(services, "celery")
    assert "redis" in _started(services, "flower")
    assert _command(flower) == "celery flower"
    assert _depends_on(flower)["redis"]["condition"] == "service_healthy"
    assert [_interpolate(port) for port in flower["ports"]] == ["127.0.0.1:5555:5555"]
