"""The deployment files under deploy/ are checked against the router they deploy.

Each file is parsed, validated with the tool that owns its format where one runs here (promtool,
amtool, systemd-analyze, the Kubernetes and Compose schemas), and cross-checked against the code:
the command is one `runbook-router` accepts, every ROUTER_* variable is a real setting with a valid
value, probes and webhook URLs name real routes, and every metric a query reads is exported.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from router.app import RouterService, check_listen_address
from router.cli import build_parser
from router.errors import ConfigError
from router.incidents.schedule import parse_duration
from router.metrics import Metrics
from router.settings import Settings
from tests.promql import Exports, query_problems
from tests.support import require_tool

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DOCS = REPO / "docs" / "deploy.md"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.29"
COMMAND = "runbook-router"
PLACEHOLDER_SECRET = "a-token-from-a-secret"

# --- what the router really is ---------------------------------------------------------------


def setting_variables() -> dict[str, str]:
    """ROUTER_* variable name -> Settings field name."""
    return {f"ROUTER_{name.upper()}": name for name in Settings.model_fields}


def settings_from(variables: dict[str, str]) -> Settings:
    """Settings from ROUTER_* variables (only those), as the daemon would read them."""
    fields = setting_variables()
    # Settings read only the values given (load_settings gives them the environment's).
    return Settings(**{fields[name]: value for name, value in variables.items()})


def routes() -> set[tuple[str, str]]:
    """(method, path) of every route the daemon serves."""
    service = RouterService(Settings(database_url="sqlite:///:memory:"))
    return {
        (route.method, route.resource.canonical)
        for route in service.web_app().router.routes()
        if route.resource is not None
    }


ROUTES = routes()
EXPORTS = Exports.from_metrics(Metrics())


def console_scripts() -> set[str]:
    text = (REPO / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return {line.split("=")[0].strip() for line in section.splitlines() if "=" in line}


def assert_runs_serve(argv: list[str]) -> None:
    """`argv` is the real command: the console script, `serve`, and options it accepts."""
    assert argv, "no command"
    assert PurePosixPath(argv[0]).name == COMMAND
    assert COMMAND in console_scripts()
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    assert not args.insecure, "deployments must authenticate webhooks, not run --insecure"


def assert_known_settings(names: set[str], where: str) -> None:
    unknown = sorted(name for name in names if name not in setting_variables())
    assert not unknown, f"{where} names settings that do not exist: {unknown}"


def router_variables_in(text: str) -> set[str]:
    return set(re.findall(r"\bROUTER_[A-Z][A-Z0-9_]*", text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def heading_slugs(markdown: str) -> set[str]:
    slugs, fenced = set(), False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            slugs.add(github_slug(match.group(1)))
    return slugs


def url_path(url: str) -> str:
    return urlsplit(url).path


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_helpers_read_the_router() -> None:
    # The cross-checks below are only as strong as these: they must see the real routes and names.
    assert ("GET", "/healthz") in ROUTES
    assert ("GET", "/readyz") in ROUTES
    assert ("POST", "/webhooks/alertmanager") in ROUTES
    assert "ROUTER_WEBHOOK_TOKEN" in setting_variables()
    assert "router_ack_seconds_bucket" in EXPORTS.histograms
    assert github_slug("RunbookRouterDown") == "runbookrouterdown"
    assert github_slug("Back up the SQLite file") == "back-up-the-sqlite-file"
    with pytest.raises(SystemExit):
        assert_runs_serve(["runbook-router", "serve", "--no-such-option"])


# --- Dockerfile --------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path) -> list[Instruction]:
    instructions, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a continued line"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


def dockerfile_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.arguments):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def exec_form(arguments: str) -> list[str]:
    argv = json.loads(arguments)
    assert isinstance(argv, list), f"not the exec form: {arguments}"
    return [str(word) for word in argv]


DOCKERFILE = DEPLOY / "Dockerfile"


def image_env() -> dict[str, str]:
    return dockerfile_env(final_stage(dockerfile_instructions(DOCKERFILE)))


def test_dockerfile_builds_on_python_311_slim_from_files_that_exist() -> None:
    instructions = dockerfile_instructions(DOCKERFILE)
    stages = [ins.arguments.split()[0] for ins in instructions if ins.keyword == "FROM"]
    assert stages and all(image == "python:3.11-slim" for image in stages)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    admitted = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for ins in instructions:
        if ins.keyword == "COPY" and "--from=" not in ins.arguments:
            *sources, _destination = ins.arguments.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
                assert source.rstrip("/") in admitted, f"{source} is excluded by .dockerignore"


def test_dockerfile_runs_serve_as_a_non_root_user() -> None:
    stage = final_stage(dockerfile_instructions(DOCKERFILE))
    last = {ins.keyword: ins.arguments for ins in stage}
    assert_runs_serve(exec_form(last["ENTRYPOINT"]) + exec_form(last["CMD"]))
    user = last["USER"].split(":")[0]
    assert user not in ("root", "0")
    assert int(user) >= 1000


def test_dockerfile_settings_are_real_and_valid() -> None:
    env = image_env()
    names = {name for name in env if name.startswith("ROUTER_")}
    assert_known_settings(names | router_variables_in(DOCKERFILE.read_text()), "Dockerfile")
    settings = settings_from({name: env[name] for name in names})
    assert settings.host == "0.0.0.0"
    assert str(settings.rules_dir) == "/etc/runbook-router/rules"
    # Listening on every address, the image refuses to start until it is given the tokens.
    with pytest.raises(ConfigError, match="ROUTER_WEBHOOK_TOKEN"):
        check_listen_address(settings, insecure=False)


def test_dockerfile_keeps_the_database_on_a_volume_and_exposes_its_port() -> None:
    stage = final_stage(dockerfile_instructions(DOCKERFILE))
    settings = settings_from({k: v for k, v in image_env().items() if k.startswith("ROUTER_")})
    volumes = [
        path for ins in stage if ins.keyword == "VOLUME" for path in exec_form(ins.arguments)
    ]
    database = PurePosixPath(settings.database_url.removeprefix("sqlite:///"))
    assert str(database.parent) in volumes
    exposed = {ins.arguments for ins in stage if ins.keyword == "EXPOSE"}
    assert str(settings.port) in exposed


def probe_paths(command: str) -> list[str]:
    """The URL paths a health-check command requests."""
    return re.findall(r"['\"](?:https?://[^/'\"]+)?(/[\w/.-]*)['\"]", command)


def test_dockerfile_healthcheck_probes_liveness() -> None:
    stage = final_stage(dockerfile_instructions(DOCKERFILE))
    healthcheck = next(ins.arguments for ins in stage if ins.keyword == "HEALTHCHECK")
    argv = exec_form(healthcheck.split(" CMD ", 1)[1])
    assert probe_paths(" ".join(argv)) == ["/healthz"]
    assert ("GET", "/healthz") in ROUTES
    # The command runs in the image: python is there, and the port follows ROUTER_PORT.
    assert argv[0] == "python"
    assert "ROUTER_PORT" in argv[-1]


# --- docker compose ----------------------------------------------------------------------------

COMPOSE = DEPLOY / "docker-compose.yml"


def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE)
    assert isinstance(document, dict)
    return document


def compose_value(value: str) -> str:
    """A compose value as it is after interpolation: `${X:-default}` is the default."""
    match = re.fullmatch(r"\$\{(\w+)(?::?([-?])(.*))?\}", value)
    if match is None:
        return value
    operator, default = match.group(2), match.group(3)
    return default if operator == "-" else PLACEHOLDER_SECRET


def test_compose_file_matches_the_compose_specification() -> None:
    schema = ["--builtin-schema", "vendor.compose-spec"]
    result = run([sys.executable, "-m", "check_jsonschema", *schema, str(COMPOSE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_router_runs_serve_with_real_settings_and_a_token() -> None:
    router = compose()["services"]["runbook-router"]
    assert (REPO / router["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert (DEPLOY / router["build"]["context"]).resolve() == REPO
    assert_runs_serve(router["entrypoint"] + router["command"])
    environment: dict[str, str] = router["environment"]
    assert_known_settings(router_variables_in(COMPOSE.read_text()), "docker-compose.yml")
    # The tokens are required: compose refuses to start without them.
    for token in ("ROUTER_WEBHOOK_TOKEN", "ROUTER_API_TOKEN"):
        assert re.fullmatch(rf"\$\{{{token}:\?.+\}}", environment[token])
    merged = {k: v for k, v in image_env().items() if k.startswith("ROUTER_")}
    merged |= {name: compose_value(value) for name, value in environment.items()}
    settings = settings_from(merged)
    check_listen_address(settings, insecure=False)


def test_compose_router_mounts_rules_and_data_where_the_image_reads_them() -> None:
    router = compose()["services"]["runbook-router"]
    settings = settings_from({k: v for k, v in image_env().items() if k.startswith("ROUTER_")})
    mounts = {}
    for volume in router["volumes"]:
        source, target, *_mode = volume.split(":")
        mounts[target] = source
    assert (DEPLOY / mounts[str(settings.rules_dir)]).resolve() == REPO / "rules"
    database_dir = str(PurePosixPath(settings.database_url.removeprefix("sqlite:///")).parent)
    assert mounts[database_dir] in compose()["volumes"]
    test = router["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert probe_paths(" ".join(test)) == ["/healthz"]


def test_compose_bind_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".") and source != "../rules":  # rules/ ships with the repository
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


def test_compose_alertmanager_sends_to_the_router_with_the_token_secret() -> None:
    document = compose()
    alertmanager = document["services"]["alertmanager"]
    secret = alertmanager["secrets"][0]
    assert document["secrets"][secret] == {"environment": "ROUTER_WEBHOOK_TOKEN"}
    config = load_yaml(DEPLOY / "alertmanager" / "compose-alertmanager.yml")
    webhooks = [
        webhook
        for receiver in config["receivers"]
        for webhook in receiver.get("webhook_configs", [])
    ]
    assert len(webhooks) == 1
    webhook = webhooks[0]
    port = settings_from({k: v for k, v in image_env().items() if k.startswith("ROUTER_")}).port
    assert urlsplit(webhook["url"]).netloc == f"runbook-router:{port}"
    assert ("POST", url_path(webhook["url"])) in ROUTES
    authorization = webhook["http_config"]["authorization"]
    assert authorization == {"type": "Bearer", "credentials_file": f"/run/secrets/{secret}"}


def test_compose_prometheus_scrapes_the_router_and_loads_its_alerts() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    router = jobs["runbook-router"]
    assert ("GET", router.get("metrics_path", "/metrics")) in ROUTES
    assert router["static_configs"][0]["targets"] == ["runbook-router:9099"]
    assert set(config["rule_files"]) == {"router-alerts.yml", "sample-alerts.yml"}
    for name in config["rule_files"]:
        assert (DEPLOY / "prometheus" / name).exists()
    # The alerts about the router select the job this config scrapes it as.
    alerts = (DEPLOY / "prometheus" / "router-alerts.yml").read_text()
    assert 'job="runbook-router"' in alerts


# --- Kubernetes --------------------------------------------------------------------------------


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in load_all_yaml(path):
            yield path, document


def manifest(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for _path, doc in manifests()
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = manifest("Deployment")["spec"]["template"]["spec"]
    return spec


def router_container() -> dict[str, Any]:
    containers = [c for c in pod_spec()["containers"] if c["name"] == "runbook-router"]
    assert len(containers) == 1
    return containers[0]


def container_env() -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in router_container()["env"]}


def deployment_settings() -> Settings:
    env = container_env()
    values = {
        name: entry.get("value", PLACEHOLDER_SECRET)
        for name, entry in env.items()
        if name.startswith("ROUTER_")
    }
    return settings_from(values)


# Kustomization and ServiceMonitor are not Kubernetes API kinds: their own tests check them.
CUSTOM_KINDS = ("Kustomization", "ServiceMonitor")


@pytest.mark.parametrize(
    ("path", "index"),
    [
        (path.name, index)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for index, document in enumerate(load_all_yaml(path))
        if document["kind"] not in CUSTOM_KINDS
    ],
)
def test_kubernetes_manifest_matches_the_api_schema(path: str, index: int) -> None:
    document = [d for d in load_all_yaml(KUBERNETES / path) if d["kind"] not in CUSTOM_KINDS][index]
    assert {"apiVersion", "kind", "metadata"} <= set(document)
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_kubernetes_schema_check_catches_an_unknown_field() -> None:
    deployment = manifest("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_examples() -> None:
    kustomization = load_yaml(KUBERNETES / "kustomization.yaml")
    listed = set(kustomization["resources"])
    for resource in listed:
        assert (KUBERNETES / resource).exists()
    optional = {"kustomization.yaml", "secret.example.yaml", "servicemonitor.yaml"}
    assert listed == {path.name for path in KUBERNETES.glob("*.yaml")} - optional


def test_kubernetes_deployment_runs_serve_with_real_settings() -> None:
    container = router_container()
    assert_runs_serve(container["command"] + container["args"])
    env = container_env()
    assert_known_settings(
        {name for name in env if name.startswith("ROUTER_")}, "deployment.yaml env"
    )
    for path in KUBERNETES.glob("*.yaml"):
        assert_known_settings(router_variables_in(path.read_text()), path.name)
    settings = deployment_settings()
    assert "valueFrom" in env["ROUTER_WEBHOOK_TOKEN"]
    check_listen_address(settings, insecure=False)
    assert container["ports"][0]["containerPort"] == settings.port


def test_kubernetes_secret_references_resolve() -> None:
    secret = manifest("Secret")
    for entry in router_container()["env"]:
        reference = entry.get("valueFrom", {}).get("secretKeyRef")
        if reference:
            assert reference["name"] == secret["metadata"]["name"]
            assert reference["key"] in secret["stringData"], reference["key"]


def test_kubernetes_probes_use_real_routes() -> None:
    container = router_container()
    port_names = {port["name"] for port in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        request = container[probe]["httpGet"]
        assert ("GET", request["path"]) in ROUTES
        assert request["port"] in port_names


def test_kubernetes_pod_runs_non_root_on_a_read_only_root() -> None:
    spec = pod_spec()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert container["resources"]["requests"], container["name"]
        assert container["resources"]["limits"]["memory"], container["name"]


def test_kubernetes_one_replica_on_sqlite_keeps_its_database_on_the_claim() -> None:
    deployment = manifest("Deployment")
    settings = deployment_settings()
    assert settings.database_url.startswith("sqlite:///")
    # One writer: never two pods on one SQLite file, not even during a rollout.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in router_container()["volumeMounts"]}
    database_dir = str(PurePosixPath(settings.database_url.removeprefix("sqlite:///")).parent)
    claim = volumes[mounts[database_dir]]["persistentVolumeClaim"]["claimName"]
    assert manifest("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert mounts[str(settings.rules_dir)] in volumes


def test_kubernetes_volumes_and_config_maps_resolve() -> None:
    spec = pod_spec()
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    for container in spec["containers"] + spec.get("initContainers", []):
        for mount in container["volumeMounts"]:
            assert mount["name"] in volumes, mount["name"]
    for volume in volumes.values():
        if "configMap" in volume:
            manifest("ConfigMap", volume["configMap"]["name"])


def config_map_files(volume_name: str) -> dict[str, str]:
    volume = next(v for v in pod_spec()["volumes"] if v["name"] == volume_name)
    data: dict[str, str] = manifest("ConfigMap", volume["configMap"]["name"])["data"]
    return data


def install_rules(tmp_path: Path) -> Path:
    """Run the init container's script on the ConfigMaps' files; return the rules directory."""
    init = next(c for c in pod_spec()["initContainers"] if c["name"] == "install-rules")
    assert init["command"][:2] == ["sh", "-c"]
    local = {}
    for mount in init["volumeMounts"]:
        local[mount["mountPath"]] = directory = tmp_path / mount["name"]
        directory.mkdir()
        volume = next(v for v in pod_spec()["volumes"] if v["name"] == mount["name"])
        if "configMap" in volume:
            for key, content in config_map_files(mount["name"]).items():
                (directory / key).write_text(content)
    # Each mount path, as a whole path, becomes its local directory.
    mount_paths = "|".join(re.escape(path) for path in sorted(local, key=len, reverse=True))
    script = re.sub(
        rf"(?<![\w/.-])({mount_paths})(?=/|\s|$)",
        lambda match: str(local[match.group(1)]),
        init["command"][2],
    )
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    # The directory the router reads is the volume the init container filled.
    settings = deployment_settings()
    router_mounts = {m["mountPath"]: m["name"] for m in router_container()["volumeMounts"]}
    return tmp_path / router_mounts[str(settings.rules_dir)]


def test_kubernetes_init_container_lays_out_rules_and_runbooks(tmp_path: Path) -> None:
    rules_dir = install_rules(tmp_path)
    rules_files = sorted(path.name for path in rules_dir.glob("*.yaml"))
    runbooks = sorted(path.name for path in (rules_dir / "runbooks").glob("*.md"))
    assert rules_files == sorted(config_map_files("rules-config"))
    assert runbooks == sorted(config_map_files("runbooks-config"))


def test_kubernetes_rules_reference_runbooks_and_secrets_it_provides(tmp_path: Path) -> None:
    rules_dir = install_rules(tmp_path)
    provided = set(container_env())
    for path in rules_dir.glob("*.yaml"):
        text = path.read_text()
        rules = yaml.safe_load(text)
        for name in re.findall(r"\$\{(\w+)\}", text):
            assert name in provided, f"{path.name} uses ${{{name}}}, which the pod does not set"
        for rule in rules["rules"]:
            if "runbook" in rule:
                file, _, anchor = rule["runbook"].partition("#")
                runbook = rules_dir / "runbooks" / file
                assert runbook.exists(), rule["runbook"]
                assert anchor in heading_slugs(runbook.read_text()), rule["runbook"]


def test_kubernetes_service_pdb_and_monitor_select_the_pods() -> None:
    labels = manifest("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = manifest("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {port["name"] for port in router_container()["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    budget = manifest("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    monitor = manifest("ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports
        assert ("GET", endpoint["path"]) in ROUTES
    # The Operator names the job after the Service; the router's own alerts select that job.
    assert service["metadata"]["name"] == "runbook-router"


# --- systemd -----------------------------------------------------------------------------------

UNIT = DEPLOY / "systemd" / "runbook-router.service"


def unit_entries(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        key, separator, value = line.partition("=")
        assert separator and current, f"{path.name}: cannot read {line!r}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def unit_values(key: str) -> list[str]:
    return [value for name, value in unit_entries(UNIT)["Service"] if name == key]


def unit_environment() -> dict[str, str]:
    variables = {}
    for value in unit_values("Environment"):
        for word in shlex.split(value):
            name, _, setting = word.partition("=")
            variables[name] = setting
    return variables


def env_file_variables(path: Path) -> dict[str, str]:
    variables = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            variables[name] = value
    return variables


def test_systemd_unit_runs_serve_with_real_settings() -> None:
    (exec_start,) = unit_values("ExecStart")
    argv = shlex.split(exec_start)
    assert argv[0].startswith("/")
    assert_runs_serve(argv)
    example = DEPLOY / "systemd" / "router.env.example"
    assert_known_settings(router_variables_in(UNIT.read_text()), UNIT.name)
    assert_known_settings(router_variables_in(example.read_text()), example.name)
    from_file = {name: value for name, value in env_file_variables(example).items() if value} | {
        "ROUTER_WEBHOOK_TOKEN": PLACEHOLDER_SECRET,
        "ROUTER_API_TOKEN": PLACEHOLDER_SECRET,
    }
    settings = settings_from(unit_environment() | from_file)
    check_listen_address(settings, insecure=False)
    assert unit_values("EnvironmentFile") == ["/etc/runbook-router/router.env"]
    # The state directory systemd creates is where the database lives.
    database = PurePosixPath(settings.database_url.removeprefix("sqlite:///"))
    assert database.parent == PurePosixPath("/var/lib") / unit_values("StateDirectory")[0]


def test_systemd_unit_is_hardened() -> None:
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "DynamicUser": "yes",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert unit_values(key) == [value], key
    assert unit_values("User") != ["root"]


def verifiable_unit(tmp_path: Path) -> Path:
    # systemd-analyze checks that ExecStart exists: point it at this environment's command.
    installed = Path(sys.executable).parent / COMMAND
    assert installed.exists()
    (exec_start,) = unit_values("ExecStart")
    text = UNIT.read_text().replace(exec_start.split()[0], str(installed))
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    tool = require_tool("systemd-analyze", "systemd")
    result = run([tool, "verify", str(verifiable_unit(tmp_path))], cwd=tmp_path)
    # verify exits 0 on unknown directives but names them: any output is a problem.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_systemd_analyze_rates_the_unit_exposure_low(tmp_path: Path) -> None:
    tool = require_tool("systemd-analyze", "systemd")
    unit = verifiable_unit(tmp_path)
    # Exposure is 0.0 (locked down) to 10.0 (unprotected); the threshold is in tenths.
    result = run([tool, "security", "--offline=yes", "--threshold=20", str(unit)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]


# --- Alertmanager ------------------------------------------------------------------------------

ALERTMANAGER_CONFIGS = ["alertmanager.yml", "compose-alertmanager.yml"]


@pytest.mark.parametrize("name", ALERTMANAGER_CONFIGS)
def test_amtool_accepts_the_alertmanager_config(name: str) -> None:
    amtool = require_tool("amtool", "prometheus-alertmanager")
    result = run([amtool, "check-config", str(DEPLOY / "alertmanager" / name)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_rejects_a_config_with_a_mistake(tmp_path: Path) -> None:
    amtool = require_tool("amtool", "prometheus-alertmanager")
    text = (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(text.replace("send_resolved:", "send_resolve:", 1))
    result = run([amtool, "check-config", str(broken)])
    assert result.returncode != 0
    assert "send_resolve" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ALERTMANAGER_CONFIGS)
def test_alertmanager_routes_alerts_about_the_router_around_it(name: str) -> None:
    amtool = require_tool("amtool", "prometheus-alertmanager")
    config = str(DEPLOY / "alertmanager" / name)
    cases = {
        "runbook-router-watchdog": ["component=runbook-router", "alertname=RunbookRouterDown"],
        "runbook-router": ["alertname=LedgerIntegrityCheckFailed", "service=ledger"],
    }
    # The Watchdog reaches the router (its heartbeat), and often enough for its interval.
    result = run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            "--verify.receivers=runbook-router",
            "alertname=Watchdog",
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    watchdog_route = next(
        route
        for route in load_yaml(DEPLOY / "alertmanager" / name)["route"]["routes"]
        if route["matchers"] == ['alertname="Watchdog"']
    )
    heartbeat = yaml.safe_load((REPO / "rules" / "30-heartbeats.yaml").read_text())["heartbeats"][0]
    assert parse_duration(watchdog_route["repeat_interval"]) * 2 <= parse_duration(
        heartbeat["interval"]
    )
    for receiver, labels in cases.items():
        options = [f"--config.file={config}", f"--verify.receivers={receiver}"]
        result = run([amtool, "config", "routes", "test", *options, *labels])
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ALERTMANAGER_CONFIGS)
def test_alertmanager_webhook_is_configured_as_the_router_expects(name: str) -> None:
    config = load_yaml(DEPLOY / "alertmanager" / name)
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    (webhook,) = receivers["runbook-router"]["webhook_configs"]
    assert ("POST", url_path(webhook["url"])) in ROUTES
    assert url_path(webhook["url"]) == "/webhooks/alertmanager"
    assert webhook["send_resolved"] is True
    assert 0 < webhook["max_alerts"] <= 1000
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    assert authorization["credentials_file"].startswith("/")


# --- Prometheus --------------------------------------------------------------------------------

PROMETHEUS = DEPLOY / "prometheus"
ROUTER_ALERTS = PROMETHEUS / "router-alerts.yml"


def router_alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ROUTER_ALERTS)["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("name", ["router-alerts.yml", "sample-alerts.yml"])
def test_promtool_accepts_the_alert_rules(name: str) -> None:
    promtool = require_tool("promtool", "prometheus")
    result = run([promtool, "check", "rules", str(PROMETHEUS / name)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_compose_prometheus_config() -> None:
    promtool = require_tool("promtool", "prometheus")
    result = run([promtool, "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_router_alerts_fire_as_their_unit_tests_say() -> None:
    promtool = require_tool("promtool", "prometheus")
    result = run([promtool, "test", "rules", "router-alerts.test.yml"], cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_router_alert_has_a_unit_test() -> None:
    tests = load_yaml(PROMETHEUS / "router-alerts.test.yml")["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in router_alert_rules()}
    assert names == tested
    assert names == firing


@pytest.mark.parametrize("rule", router_alert_rules(), ids=lambda rule: rule["alert"])
def test_router_alert_reads_exported_metrics(rule: dict[str, Any]) -> None:
    assert query_problems(rule["expr"], EXPORTS) == []


@pytest.mark.parametrize("rule", router_alert_rules(), ids=lambda rule: rule["alert"])
def test_router_alert_explains_itself_and_links_its_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["component"] == "runbook-router"
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    annotations = rule["annotations"]
    assert annotations["summary"] and annotations["description"]
    url = urlsplit(annotations["runbook_url"])
    assert url.path.endswith("/docs/deploy.md")
    assert url.fragment == github_slug(rule["alert"])
    assert url.fragment in heading_slugs(DOCS.read_text())


def test_router_alerts_cover_what_can_go_wrong() -> None:
    expressions = " ".join(rule["expr"] for rule in router_alert_rules())
    for watched in (
        'up{job="runbook-router"}',  # down
        "router_pages_total",  # pages failing
        "router_escalation_lag_seconds_bucket",  # escalations late
        "router_notification_queue_depth",  # queue growing
        "router_webhook_rejected_total",  # webhooks refused
    ):
        assert watched in expressions


# --- Grafana -----------------------------------------------------------------------------------

DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}


def dashboard() -> dict[str, Any]:
    document = json.loads(DASHBOARD.read_text())
    assert isinstance(document, dict)
    return document


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every query in the dashboard's panels."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def template_queries() -> list[tuple[str, str]]:
    """(variable name, label_values query) of the dashboard's query variables."""
    return [
        (variable["name"], variable["query"]["query"])
        for variable in dashboard()["templating"]["list"]
        if variable["type"] == "query"
    ]


def test_dashboard_panels_are_well_formed() -> None:
    panels = dashboard()["panels"]
    assert dashboard()["uid"] and dashboard()["title"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in dashboard()["templating"]["list"]}
    assert "datasource" in variables
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            refs = [target["refId"] for target in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize(("title", "expr"), dashboard_queries())
def test_dashboard_query_reads_exported_metrics(title: str, expr: str) -> None:
    assert query_problems(expr, EXPORTS) == []
    variables = {variable["name"] for variable in dashboard()["templating"]["list"]}
    for used in re.findall(r"\$\{?(\w+)", expr):
        assert used in variables | GRAFANA_BUILTINS, f"{title}: ${used} is not defined"


@pytest.mark.parametrize(("name", "query"), template_queries())
def test_dashboard_variable_reads_an_exported_label(name: str, query: str) -> None:
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
    assert match, query
    selector, label = match.groups()
    assert query_problems(selector, EXPORTS) == []
    assert label == name


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "prometheus")
    # promtool parses the expressions of recording rules: give it each query as one.
    substitutions = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
    rules = []
    for index, (_title, expr) in enumerate(dashboard_queries()):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_every_metric_the_router_exports() -> None:
    read = " ".join(expr for _title, expr in dashboard_queries())
    # The router's own series; of prometheus-client's standard process_* and python_* series the
    # dashboard shows memory and CPU only.
    missing = sorted(
        family
        for family in set(EXPORTS.family.values())
        if family.startswith("router_")
        and not re.search(rf"\b{family}(_total|_bucket|_sum|_count|_info)?\b", read)
    )
    assert missing == []


def test_grafana_contact_point_sends_to_the_router_with_a_bearer_token() -> None:
    provisioning = load_yaml(DEPLOY / "grafana" / "contact-point.yaml")
    assert provisioning["apiVersion"] == 1
    (contact_point,) = provisioning["contactPoints"]
    (receiver,) = contact_point["receivers"]
    assert receiver["type"] == "webhook"
    assert len(receiver["uid"]) <= 40  # Grafana's limit for a uid
    settings = receiver["settings"]
    assert ("POST", url_path(settings["url"])) in ROUTES
    assert url_path(settings["url"]) == "/webhooks/grafana"
    assert settings["httpMethod"] == "POST"
    assert settings["authorization_scheme"] == "Bearer"
    assert settings["authorization_credentials"] == "${ROUTER_WEBHOOK_TOKEN}"
    assert receiver["disableResolveMessage"] is False
    assert_known_settings(router_variables_in(json.dumps(provisioning)), "contact-point.yaml")


# --- documentation -----------------------------------------------------------------------------


def test_deploy_docs_describe_every_deployment_file() -> None:
    text = DOCS.read_text()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            relative = path.relative_to(REPO).as_posix()
            assert relative in text, f"docs/deploy.md does not mention {relative}"
    assert_known_settings(router_variables_in(text), "docs/deploy.md")


def test_deploy_docs_name_real_routes_and_metrics() -> None:
    text = DOCS.read_text()
    for method, path in re.findall(r"`(GET|POST) (/[\w/{}.-]*)", text):
        assert (method, path) in ROUTES, f"docs/deploy.md names {method} {path}"
    for name in set(re.findall(r"\brouter_[a-z_]+", text)):
        assert name in EXPORTS.labels or name in EXPORTS.family.values(), name


def test_the_readme_and_deploy_docs_list_every_route_and_metric() -> None:
    """The README's HTTP table names every route the daemon serves (its own style sheet aside),
    and both metric tables name every series it exports: a new endpoint or metric that the docs
    leave out fails here."""
    readme = (REPO / "README.md").read_text()
    unlisted = sorted(
        f"{method} {path}"
        for method, path in ROUTES
        if method != "HEAD"
        and not path.startswith("/static/")
        and f"`{method} {path}" not in readme
    )
    assert unlisted == [], f"README.md's HTTP table lacks {unlisted}"
    for where, text in (("README.md", readme), ("docs/deploy.md", DOCS.read_text())):
        missing = sorted(
            family
            for family in set(EXPORTS.family.values())
            if family.startswith("router_") and not re.search(rf"`{family}(_total|_info)?`", text)
        )
        assert missing == [], f"{where}'s metric table lacks {missing}"


# --- the checks catch mistakes -----------------------------------------------------------------


def test_compose_schema_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    entrypoint:", "    entrypiont:", 1))
    schema = ["--builtin-schema", "vendor.compose-spec"]
    result = run([sys.executable, "-m", "check_jsonschema", *schema, str(broken)])
    assert result.returncode != 0
    assert "entrypiont" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("expr", "problems"),
    [
        (
            'rate(router_pages_total{outcome="failure"}[5m])',
            [
                'router_pages_total label outcome has no value "failure" '
                "(values: delivered, failed, retried)"
            ],
        ),
        (
            "router_ack_seconds",
            [
                "router_ack_seconds is not a series the router exports; router_ack_seconds has "
                "router_ack_seconds_bucket, router_ack_seconds_count, router_ack_seconds_sum"
            ],
        ),
        (
            "sum by (tiers) (rate(router_pages_total[5m]))",
            ["groups by tiers, which none of its metrics has"],
        ),
        (
            'router_open_incidents{severity="P0", status="open"}',
            ["router_open_incidents has no label status (labels: severity, state)"],
        ),
        (
            "histogram_quantile(0.99, sum by (severity) (rate(router_ack_seconds_bucket[5m])))",
            ["histogram_quantile without `le` in its aggregation"],
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(router_ack_seconds_sum[5m])))",
            [
                "groups by le, which none of its metrics has",
                "histogram_quantile over no _bucket series",
            ],
        ),
        (
            'sum(rate(router_webhook_rejected_total{reason=~"unauthorized|forbidden"}[5m]))',
            [
                'router_webhook_rejected_total label reason has no value "forbidden" (values: '
                "malformed, shutting_down, store_unavailable, too_large, unauthorized, "
                "unsupported_media_type)"
            ],
        ),
        ("router_pages_sent_total", ["router_pages_sent_total is not a metric the router exports"]),
        ('absent(up{job="runbook-router"}) or vector(0)', []),
    ],
)
def test_query_check_names_each_mistake(expr: str, problems: list[str]) -> None:
    assert query_problems(expr, EXPORTS) == problems


# --- the deployed settings, running ------------------------------------------------------------


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_status(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def deployed_router(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`runbook-router serve` with the image's settings, on loopback, with the Kubernetes rules."""
    rules_dir = install_rules(tmp_path)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    environment |= {k: v for k, v in image_env().items() if k.startswith("ROUTER_")}
    environment |= {
        "ROUTER_HOST": "127.0.0.1",  # the image's 0.0.0.0 would reach beyond this machine
        "ROUTER_PORT": str(free_loopback_port()),
        "ROUTER_RULES_DIR": str(rules_dir),
        "ROUTER_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'router.db'}",
        "ROUTER_WEBHOOK_TOKEN": "deploy-test-token",
        "ROUTER_API_TOKEN": "deploy-test-api-token",
        "PD_ONCALL_KEY": "deploytestroutingkey000000000000",
    }
    command = [str(Path(sys.executable).parent / COMMAND), "serve"]
    process = subprocess.Popen(
        command, env=environment, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{environment['ROUTER_PORT']}"
    try:
        deadline = time.monotonic() + 20
        while http_status_or_none(f"{base}/healthz") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.communicate()[0].decode(errors="replace")
                pytest.fail(f"runbook-router did not start:\n{output}")
            time.sleep(0.05)
        yield environment | {"base": base}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def http_status_or_none(url: str) -> int | None:
    try:
        return http_status(url)
    except OSError:
        return None


@pytest.mark.process
def test_image_healthcheck_command_passes_against_the_running_router(
    deployed_router: dict[str, str],
) -> None:
    stage = final_stage(dockerfile_instructions(DOCKERFILE))
    healthcheck = next(ins.arguments for ins in stage if ins.keyword == "HEALTHCHECK")
    argv = exec_form(healthcheck.split(" CMD ", 1)[1])
    argv[0] = sys.executable  # `python` in the image is its virtual environment's
    environment = {"ROUTER_PORT": deployed_router["ROUTER_PORT"], "PATH": os.environ["PATH"]}
    result = subprocess.run(argv, env=environment, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    # Against a port where nothing listens, the same command fails: the check can fail.
    environment["ROUTER_PORT"] = str(free_loopback_port())
    result = subprocess.run(argv, env=environment, capture_output=True, text=True, check=False)
    assert result.returncode != 0


@pytest.mark.process
def test_alertmanager_webhook_as_configured_is_accepted(deployed_router: dict[str, str]) -> None:
    config = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    (webhook,) = receivers["runbook-router"]["webhook_configs"]
    url = deployed_router["base"] + url_path(webhook["url"])
    body = (REPO / "tests" / "fixtures" / "deploy" / "alertmanager-webhook.json").read_bytes()
    scheme = webhook["http_config"]["authorization"]["type"]
    json_type = {"Content-Type": "application/json"}
    token = deployed_router["ROUTER_WEBHOOK_TOKEN"]
    # What Alertmanager sends: the credentials file's content after the configured scheme.
    authorized = json_type | {"Authorization": f"{scheme} {token}"}
    assert http_status(url, body, authorized) == 200
    assert http_status(url, body, json_type) == 401
    assert http_status(url, body, json_type | {"Authorization": f"{scheme} wrong"}) == 401
    assert http_status(deployed_router["base"] + "/readyz") == 200
