"""The docker compose deployment, checked without Docker.

Docker cannot run everywhere the tests run, so these tests read the files instead: the compose
file, what it mounts and builds, the settings it passes, Grafana's provisioning and dashboards,
and the Prometheus config it mounts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tests.dashboards import all_panels

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
GRAFANA_PROVISIONING = REPO / "grafana" / "provisioning"
GRAFANA_DASHBOARDS = REPO / "grafana" / "dashboards"
PROMETHEUS_CONFIG = REPO / "prometheus" / "prometheus.yml"

SERVICES = {"kafka", "redis", "prometheus", "alertmanager", "grafana", "worker", "simulator"}
DEFAULT_WEB_PORT = "6066"  # Settings.web_port
PROMETHEUS_DEFAULT_CONFIG = "/etc/prometheus/prometheus.yml"  # the image's default
# Datasources every Grafana has without provisioning.
GRAFANA_BUILTIN_DATASOURCES = {"-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana"}

_INTERPOLATION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}")


# --- reading the compose file -------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), f"{COMPOSE_FILE.name}: not a YAML mapping"
    return data


def compose_services() -> dict[str, dict[str, Any]]:
    services = load_compose().get("services")
    assert isinstance(services, dict), f"{COMPOSE_FILE.name}: no `services` mapping"
    return services


def with_defaults(value: str) -> str:
    """``${NAME:-default}`` -> ``default`` (what compose uses when NAME is unset)."""
    return _INTERPOLATION.sub(lambda m: m.group(1) or "", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, list or mapping syntax, as a mapping."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {name: value for name, _, value in pairs}
    return {str(name): "" if value is None else str(value) for name, value in env.items()}


def volume_entries(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, source, target) of every volume of a service; kind is "bind" or "volume"."""
    entries = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            source, _, rest = entry.partition(":")
            target = rest.split(":")[0]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        else:
            source, target = str(entry.get("source", "")), str(entry.get("target", ""))
            kind = str(entry.get("type", "volume"))
        entries.append((kind, source, target))
    return entries


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    return [(src, dst) for kind, src, dst in volume_entries(service) if kind == "bind"]


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repo file a bind mount of ``service`` shows at ``container_path``, if any."""
    wanted = PurePosixPath(container_path)
    for source, target in bind_mounts(service):
        mount = PurePosixPath(target)
        if wanted == mount or mount in wanted.parents:
            return REPO / source / wanted.relative_to(mount)
    return None


def worker_web_port() -> str:
    env = environment(compose_services()["worker"])
    return with_defaults(env.get("SALESPULSE_WEB_PORT", DEFAULT_WEB_PORT)) or DEFAULT_WEB_PORT


def published_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, host port) of each port a service publishes on the host; an empty
    address is every interface, an empty port one Docker picks."""
    published = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published.append((str(entry.get("host_ip", "")), str(entry.get("published", ""))))
            continue
        parts = str(entry).split("/")[0].rsplit(":", 2)
        address = parts[0].strip("[]") if len(parts) == 3 else ""
        published.append((address, parts[-2] if len(parts) > 1 else ""))
    return published


_REQUIREPASS = re.compile(r"""--requirepass[\s=]+["']?(\$\$?\{?(\w+)\}?|[^\s"']+)""")


def requirepass(service: dict[str, Any]) -> str | None:
    """The password a redis service's command sets, resolved as compose and the shell would."""
    command = service.get("command") or []
    text = command if isinstance(command, str) else " ".join(str(part) for part in command)
    found = _REQUIREPASS.search(text)
    if found is None:
        return None
    value = environment(service).get(found.group(2), "") if found.group(2) else found.group(1)
    return with_defaults(value)


# --- reading Grafana's files --------------------------------------------------------------


def provisioning_files(kind: str) -> list[Path]:
    folder = GRAFANA_PROVISIONING / kind
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def provisioned_datasources() -> list[dict[str, Any]]:
    sources = []
    for path in provisioning_files("datasources"):
        sources.extend(yaml.safe_load(path.read_text()).get("datasources") or [])
    return sources


# --- tests --------------------------------------------------------------------------------


def test_compose_file_has_the_six_services() -> None:
    compose = load_compose()
    services = compose_services()
    problems = []
    if "version" in compose:
        problems.append("top-level `version` is obsolete in the compose spec: remove it")
    if missing := SERVICES - services.keys():
        problems.append(f"missing services: {sorted(missing)}")
    for name, service in services.items():
        if not isinstance(service, dict) or not ({"image", "build"} & service.keys()):
            problems.append(f"service {name}: neither `image` nor `build`")
    assert not problems, f"{COMPOSE_FILE.name}:\n" + "\n".join(problems)


def test_bind_mount_sources_exist_in_the_repo() -> None:
    problems = []
    count = 0
    for name, service in compose_services().items():
        for source, target in bind_mounts(service):
            count += 1
            if not source.startswith("."):
                problems.append(f"{name}: {source} -> {target}: not relative to the repo")
            elif not (REPO / source).exists():
                problems.append(f"{name}: {source} -> {target}: {source} does not exist")
    assert count, f"{COMPOSE_FILE.name}: no bind mounts found (prometheus and grafana need some)"
    assert not problems, f"{COMPOSE_FILE.name}, bind mounts:\n" + "\n".join(problems)


def test_named_volumes_are_declared_and_hold_the_worker_state() -> None:
    declared = (load_compose().get("volumes") or {}).keys()
    services = compose_services()
    problems = []
    for name, service in services.items():
        for kind, source, target in volume_entries(service):
            if kind == "volume" and source and source not in declared:
                problems.append(f"{name}: volume {source!r} ({target}) is not declared")
    worker = services["worker"]
    data_dir = environment(worker).get("SALESPULSE_DATA_DIR")
    if not data_dir:
        problems.append("worker: SALESPULSE_DATA_DIR is not set")
    else:
        volumes = [
            PurePosixPath(target) for kind, _, target in volume_entries(worker) if kind == "volume"
        ]
        wanted = PurePosixPath(data_dir)
        if not any(wanted == v or v in wanted.parents for v in volumes):
            problems.append(f"worker: SALESPULSE_DATA_DIR={data_dir} is not on a named volume")
    assert not problems, f"{COMPOSE_FILE.name}, volumes:\n" + "\n".join(problems)


def test_build_contexts_have_their_dockerfile_and_its_sources() -> None:
    problems = []
    built = []
    for name, service in compose_services().items():
        build = service.get("build")
        if build is None:
            continue
        built.append(name)
        if isinstance(build, str):
            build = {"context": build}
        context = REPO / str(build.get("context", "."))
        dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
        if not context.is_dir():
            problems.append(f"{name}: build context {build.get('context')} is not a directory")
            continue
        if not dockerfile.is_file():
            problems.append(f"{name}: {dockerfile.relative_to(REPO)} does not exist")
            continue
        # Every `COPY <src>... <dest>` (not from another stage) must find its sources.
        for line in dockerfile.read_text().splitlines():
            words = line.split()
            if not words or words[0].upper() != "COPY":
                continue
            if any(word.startswith("--from") for word in words):
                continue
            for source in (w for w in words[1:-1] if not w.startswith("--")):
                if not (context / source).exists():
                    problems.append(f"{dockerfile.name}: COPY {source}: not in the build context")
    assert {"worker", "simulator"} <= set(built), f"worker and simulator must build: {built}"
    assert not problems, f"{COMPOSE_FILE.name}, builds:\n" + "\n".join(problems)


def test_salespulse_variables_are_settings_fields() -> None:
    from streams.settings import Settings

    names = set(re.findall(r"\bSALESPULSE_[A-Z0-9_]+\b", COMPOSE_FILE.read_text()))
    for service in compose_services().values():
        names |= {name for name in environment(service) if name.startswith("SALESPULSE_")}
    assert names, f"{COMPOSE_FILE.name}: no SALESPULSE_* variables at all"
    unknown = sorted(
        name
        for name in names
        if name.removeprefix("SALESPULSE_").lower() not in Settings.model_fields
    )
    assert not unknown, (
        f"{COMPOSE_FILE.name}: not fields of streams.settings.Settings (typo? renamed?): {unknown}"
    )


def test_kafka_and_redis_stay_off_the_host_and_the_rest_on_loopback() -> None:
    services = compose_services()
    problems = []
    for name in ("kafka", "redis"):
        if services[name].get("network_mode") == "host":
            problems.append(f"{name}: network_mode host puts it on the host's network")
        if ports := published_ports(services[name]):
            problems.append(f"{name}: published on the host {ports}; only containers need it")
    worker = published_ports(services["worker"])
    if worker != [("127.0.0.1", worker_web_port())]:
        problems.append(
            f"worker: publishes {worker}, not its web port {worker_web_port()} on 127.0.0.1 only"
        )
    # Prometheus, Alertmanager and Grafana (anonymous viewers) answer without credentials:
    # every rep's figures, to anyone who reaches them. This host only, by default.
    for name, service in services.items():
        if service.get("network_mode") == "host":
            problems.append(f"{name}: network_mode host puts it on the host's network")
        for host, port in published_ports(service):
            if host != "127.0.0.1":
                problems.append(f"{name}: port {port} published on {host or 'every interface'}")
    assert not problems, f"{COMPOSE_FILE.name}, host ports:\n" + "\n".join(problems)


def test_redis_asks_for_the_password_the_worker_is_given() -> None:
    services = compose_services()
    redis, worker = services["redis"], services["worker"]
    given = with_defaults(environment(worker).get("SALESPULSE_REDIS_PASSWORD", ""))
    assert given, "worker: SALESPULSE_REDIS_PASSWORD is not set"
    assert requirepass(redis) == given, (
        f"redis: --requirepass is {requirepass(redis)!r}, the worker is given {given!r}"
    )
    check = str((redis.get("healthcheck") or {}).get("test"))
    cli_password = with_defaults(environment(redis).get("REDISCLI_AUTH", ""))
    assert cli_password == given or "-a " in check, (
        "redis: the healthcheck's redis-cli is not given the password (NOAUTH forever)"
    )
    # `given` is the default (no SALESPULSE_REDIS_PASSWORD here): the README says to change it.
    assert given in (REPO / "README.md").read_text(), (
        f"README.md does not name the default Redis password {given!r} (to be changed)"
    )


def test_grafana_provisioning_files_parse() -> None:
    problems = []
    files = provisioning_files("datasources") + provisioning_files("dashboards")
    for path in files:
        name = path.relative_to(REPO)
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            problems.append(f"{name}: invalid YAML: {exc}")
            continue
        if not isinstance(data, dict) or data.get("apiVersion") != 1:
            problems.append(f"{name}: not a mapping with `apiVersion: 1`")
            continue
        key = "datasources" if path.parent.name == "datasources" else "providers"
        entries = data.get(key)
        if not isinstance(entries, list) or not entries:
            problems.append(f"{name}: no `{key}` list")
            continue
        for i, entry in enumerate(entries):
            if key == "datasources":
                missing = [k for k in ("name", "uid", "type", "url") if not entry.get(k)]
            else:
                missing = [k for k in ("name", "type") if not entry.get(k)]
                if not (entry.get("options") or {}).get("path"):
                    missing.append("options.path")
            if missing:
                problems.append(f"{name}: {key}[{i}] lacks {missing}")
    assert provisioning_files("datasources"), "no grafana/provisioning/datasources/*.yaml"
    assert provisioning_files("dashboards"), "no grafana/provisioning/dashboards/*.yaml"
    assert not problems, "Grafana provisioning:\n" + "\n".join(problems)


def test_dashboard_providers_read_the_mounted_dashboards() -> None:
    grafana = compose_services()["grafana"]
    problems = []
    for path in provisioning_files("dashboards"):
        for provider in yaml.safe_load(path.read_text()).get("providers") or []:
            folder = (provider.get("options") or {}).get("path", "")
            source = host_path(grafana, folder)
            if source is None:
                problems.append(f"{path.name}: {folder} is not bind-mounted into grafana")
            elif source.resolve() != GRAFANA_DASHBOARDS.resolve():
                problems.append(f"{path.name}: {folder} shows {source}, not grafana/dashboards")
    for folder in ("/etc/grafana/provisioning", "/var/lib/grafana/dashboards"):
        if host_path(grafana, folder) is None:
            problems.append(f"{COMPOSE_FILE.name}: grafana does not mount {folder}")
    assert not problems, "Grafana dashboards provisioning:\n" + "\n".join(problems)


def test_dashboards_are_valid_and_use_provisioned_datasources() -> None:
    datasources = provisioned_datasources()
    uids = {str(ds.get("uid")) for ds in datasources}
    names = {str(ds.get("name")) for ds in datasources}
    paths = sorted(GRAFANA_DASHBOARDS.rglob("*.json"))
    assert paths, "no dashboards in grafana/dashboards/"
    problems = []
    seen: dict[str, dict[str, str]] = {"uid": {}, "title": {}}
    for path in paths:
        name = path.relative_to(REPO)
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            problems.append(f"{name}: invalid JSON: {exc}")
            continue
        for key in ("uid", "title"):
            value = dashboard.get(key)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{name}: empty or missing `{key}`")
            elif value in seen[key]:
                problems.append(f"{name}: `{key}` {value!r} also used by {seen[key][value]}")
            else:
                seen[key][value] = str(name)
        variables = {
            v.get("name")
            for v in (dashboard.get("templating") or {}).get("list") or []
            if v.get("type") == "datasource"
        }

        def check_datasource(where: str, ref: Any, variables: set[Any] = variables) -> None:
            if ref is None:
                return  # the default datasource
            value = ref.get("uid") if isinstance(ref, dict) else ref
            value = str(value)
            if value.startswith("$"):
                if value.strip("${}") not in variables:
                    problems.append(f"{where}: datasource variable {value} is not defined")
            elif value not in uids | GRAFANA_BUILTIN_DATASOURCES and not (
                isinstance(ref, str) and ref in names
            ):
                problems.append(f"{where}: datasource {value!r} is not provisioned {sorted(uids)}")

        panels = all_panels(dashboard.get("panels") or [])
        if not panels:
            problems.append(f"{name}: no panels")
        panel_ids: set[Any] = set()
        for panel in panels:
            where = f"{name}: panel {panel.get('id')} {panel.get('title')!r}"
            if panel.get("id") in panel_ids:
                problems.append(f"{where}: duplicate panel id")
            panel_ids.add(panel.get("id"))
            grid = panel.get("gridPos") or {}
            if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
                problems.append(f"{where}: gridPos needs integer h, w, x, y")
            check_datasource(where, panel.get("datasource"))
            if panel.get("type") == "row":
                continue
            targets = panel.get("targets") or []
            if not targets:
                problems.append(f"{where}: no targets")
            ref_ids = [t.get("refId") for t in targets]
            if len(set(ref_ids)) != len(ref_ids) or not all(ref_ids):
                problems.append(f"{where}: refIds must be present and unique: {ref_ids}")
            for target in targets:
                check_datasource(f"{where} target {target.get('refId')}", target.get("datasource"))
                if not str(target.get("expr", "")).strip():
                    problems.append(f"{where} target {target.get('refId')}: empty expr")
    assert not problems, "Grafana dashboards:\n" + "\n".join(problems)


def test_prometheus_config_is_mounted_and_scrapes_the_worker() -> None:
    services = compose_services()
    prometheus = services["prometheus"]
    command = prometheus.get("command") or []
    args = command.split() if isinstance(command, str) else [str(a) for a in command]
    config = PROMETHEUS_DEFAULT_CONFIG
    for i, arg in enumerate(args):
        if arg.startswith("--config.file="):
            config = arg.partition("=")[2]
        elif arg == "--config.file" and i + 1 < len(args):
            config = args[i + 1]
    source = host_path(prometheus, config)
    assert source is not None, f"{COMPOSE_FILE.name}: prometheus config {config} is not mounted"
    assert source.resolve() == PROMETHEUS_CONFIG.resolve(), (
        f"{COMPOSE_FILE.name}: prometheus reads {source}, not prometheus/prometheus.yml"
    )

    problems = []
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [
        target
        for job in scrape.get("scrape_configs") or []
        for static in job.get("static_configs") or []
        for target in static.get("targets") or []
    ]
    port = worker_web_port()
    if f"worker:{port}" not in targets:
        problems.append(f"prometheus.yml: no target worker:{port} (targets: {targets})")
    # Rule files are relative to the config file: they must be inside the mounted directory.
    for rule in scrape.get("rule_files") or []:
        if any(c in rule for c in "*?["):
            continue  # a glob may rightly match nothing yet
        if host_path(prometheus, str(PurePosixPath(config).parent / rule)) is None:
            problems.append(f"prometheus.yml: rule file {rule} is outside the mounted directory")
        elif not (PROMETHEUS_CONFIG.parent / rule).is_file():
            problems.append(f"prometheus.yml: rule file {rule} does not exist")
    worker_env = environment(services["worker"])
    if worker_env.get("SALESPULSE_WEB_HOST") != "0.0.0.0":
        problems.append(
            f"worker: SALESPULSE_WEB_HOST={worker_env.get('SALESPULSE_WEB_HOST')!r}, "
            "Prometheus cannot reach it unless it is 0.0.0.0"
        )
    assert not problems, "Prometheus in compose:\n" + "\n".join(problems)


def test_prometheus_sends_the_workers_token_from_a_secret() -> None:
    """The worker listens on 0.0.0.0 only with a token: compose requires one, gives it to the
    worker and, as the secret web-token, to Prometheus, whose worker job sends it."""
    services = compose_services()
    token = environment(services["worker"]).get("SALESPULSE_WEB_TOKEN", "")
    assert token.startswith("${SALESPULSE_WEB_TOKEN:?"), f"worker: SALESPULSE_WEB_TOKEN={token!r}"
    assert "web-token" in (services["prometheus"].get("secrets") or [])
    assert load_compose()["secrets"]["web-token"] == {"environment": "SALESPULSE_WEB_TOKEN"}
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (worker_job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "salespulse"]
    assert worker_job["authorization"] == {
        "type": "Bearer", "credentials_file": "/run/secrets/web-token"
    }  # fmt: skip
    healthcheck = " ".join(services["worker"]["healthcheck"]["test"])
    assert "/health'" in healthcheck  # no token needed there
