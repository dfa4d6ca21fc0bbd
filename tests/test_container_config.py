"""Static checks of the container setup (Dockerfile, docker-compose.yml).

The compose file is validated and normalised by a real compose tool (`docker compose` v2
or Debian's `docker-compose` 1.29), so anchors/merge keys, interpolation and schema
errors are caught the way `up` would see them. No Docker daemon is needed.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
LOCAL_IMAGES_FILE = ROOT / "docker-compose.local-images.yml"
DOCKERFILE = ROOT / "Dockerfile"

# compose service name -> (python module, port it listens on)
APP_SERVICES = {
    "intake": ("services.intake", 8080),
    "status": ("services.status", 8081),
    "license-issuer": ("services.license_issuer", 8082),
    "order-id": ("services.order_id", 8083),
    "backoffice": ("services.backoffice", 8085),  # the provider's console
}
INFRA_SERVICES = ("rabbitmq", "postgres")
ONE_SHOT = "provision"
PORTAL = "portal"  # the tenants' origin: no broker or database of its own
PUBLISHED = {"intake": 8080, "status": 8081, PORTAL: 8084, "backoffice": 8085}
# Each process's internal port: /metrics, /healthz, /readyz for operators (never published).
METRICS_PORTS = {"intake": 9080, "status": 9081, "license-issuer": 9082, "order-id": 9083, "backoffice": 9085,
                 PORTAL: 9084}
OBSERVABILITY = ("otel-collector", "jaeger", "prometheus")  # the `observability` profile
OBSERVABILITY_CONFIG = ROOT / "deploy" / "compose" / "observability"
OTEL_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL")

INSTALL_HINT = (
    "no compose tool found: install one with `apt-get install -y docker-compose` "
    "(Debian, 1.29) or the Docker Compose v2 plugin (`docker compose`)"
)


def _run(cmd: list[str], extra_env: tuple[tuple[str, str], ...] = ()) -> subprocess.CompletedProcess[str]:
    # Drop variables the compose file interpolates (and COMPOSE_* overrides) so the
    # checks see the file's own defaults, whatever the caller's shell has set.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ARCSERVE_", "COMPOSE_", "PUBLISH_", "OTEL_")) and k != "LOG_LEVEL"
    }
    return subprocess.run(cmd, cwd=ROOT, env={**env, **dict(extra_env)}, capture_output=True, text=True, timeout=120)


def _compose_tool() -> tuple[list[str], bool]:
    """Return (base command, speaks_json) for the available compose tool."""
    if shutil.which("docker") and _run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"], True
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(INSTALL_HINT)
    version = _run([exe, "version", "--short"]).stdout.strip()
    # A standalone v2 binary may also be called docker-compose.
    return [exe], not version.startswith("1.")


def _yaml_to_json_via(exe: str, text: str) -> str:
    # compose v1 has no `config --format json`, and PyYAML is not in our venv. v1 is a
    # Python program that imports PyYAML itself, so its own interpreter (the script's
    # shebang) is guaranteed to have it.
    with open(exe, encoding="utf-8", errors="replace") as fh:
        shebang = fh.readline()
    interpreter = shlex.split(shebang[2:])
    assert shebang.startswith("#!") and interpreter, f"cannot find the interpreter of {exe}"
    proc = subprocess.run(
        [*interpreter, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=text, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, f"converting compose v1 output to JSON failed:\n{proc.stderr}"
    return proc.stdout


@functools.cache
def compose_config(*files: Path, profiles: tuple[str, ...] = (), env: tuple[tuple[str, str], ...] = ()) -> dict:
    base, speaks_json = _compose_tool()
    args = [*base, *(arg for f in files or (COMPOSE_FILE,) for arg in ("-f", str(f))),
            *(arg for profile in profiles for arg in ("--profile", profile)), "config"]
    if speaks_json:
        args += ["--format", "json"]
    proc = _run(args, env)
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(args)}` rejected the compose file(s):\n{proc.stderr}")
    out = proc.stdout if speaks_json else _yaml_to_json_via(base[0], proc.stdout)
    return json.loads(out)


def yaml_services() -> dict:
    """The compose file as written (no interpolation or env files applied)."""
    import yaml

    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def services() -> dict:
    return compose_config()["services"]


def _command(svc: dict) -> list[str]:
    cmd = svc.get("command")
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])


def _seconds(duration: str | int) -> float:
    """Compose duration ("30s", "1m30s") in seconds; ints are nanoseconds."""
    if isinstance(duration, int):
        return duration / 1e9
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _service_modules() -> dict[str, str]:
    """compose service -> module named by its `python -m X` command."""
    found = {}
    for name, svc in services().items():
        cmd = _command(svc)
        if cmd[:2] == ["python", "-m"] and len(cmd) >= 3:
            found[name] = cmd[2]
    return found


def test_compose_file_is_valid_and_has_all_services():
    # compose v2 leaves a profile's services out of `config` unless it is named; 1.29 lists them.
    assert {name for name, svc in services().items() if not svc.get("profiles")} == \
        set(APP_SERVICES) | set(INFRA_SERVICES) | {ONE_SHOT, PORTAL}


def test_the_portal_fronts_intake_and_status_with_no_credentials_of_theirs():
    svc = services()[PORTAL]
    assert _command(svc) == ["python", "-m", "services.portal"]
    assert svc["image"] == services()["intake"]["image"]
    assert svc["environment"]["PORTAL_PORT"] == "8084"
    assert svc["environment"]["PORTAL_INTAKE_URL"] == "http://intake:8080"
    assert svc["environment"]["PORTAL_STATUS_URL"] == "http://status:8081"
    assert {name: dep["condition"] for name, dep in svc["depends_on"].items()} == {
        "intake": "service_healthy", "status": "service_healthy"}
    assert svc["healthcheck"]["test"][1:] == ["python", "-m", "shared.http.healthcheck", "http://127.0.0.1:8084/readyz"]
    assert not [k for k in svc["environment"] if k.endswith(("_AMQP_URL", "_DATABASE_URL", "PEPPER", "_KEYRING"))
                and k != "ARCSERVE_PORTAL_SESSION_KEYRING"]
    assert set(svc["environment"]) - {"LOG_LEVEL", *OTEL_VARIABLES} == {
        "ARCSERVE_HOST", "PORTAL_PORT", "PORTAL_METRICS_PORT", "PORTAL_INTAKE_URL", "PORTAL_STATUS_URL",
        "ARCSERVE_PORTAL_SESSION_KEYRING",
        "ARCSERVE_FORWARDING_SECRET"}  # shared with intake and status: the portal vouches for its clients' addresses


@pytest.mark.parametrize("name", [*APP_SERVICES, PORTAL])
def test_every_http_port_binds_the_containers_network_not_only_its_loopback(name):
    """A local run binds 127.0.0.1 by default (shared/config.py); inside a container that would be unreachable."""
    assert services()[name]["environment"]["ARCSERVE_HOST"] == "0.0.0.0"


def test_no_top_level_version_key():
    # docker compose v2 warns that `version` is obsolete; 1.29 accepts the file without it.
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"^version\s*:", text, re.MULTILINE)


def test_infra_images():
    # The official images by default; docker-compose.local-images.yml swaps in local builds.
    assert services()["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert services()["postgres"]["image"].startswith("postgres:16")
    env = services()["postgres"]["environment"]
    assert env["POSTGRES_USER"] == env["POSTGRES_PASSWORD"] == env["POSTGRES_DB"] == "arcserve"
    # v1 normalises volumes to "src:dst:mode" strings, v2 to {source, target} mappings.
    mounts = [
        tuple(v.split(":")[:2]) if isinstance(v, str) else (v.get("source"), v.get("target"))
        for v in services()["postgres"].get("volumes", [])
    ]
    named = set(compose_config().get("volumes") or {})
    assert any(src in named and dst == "/var/lib/postgresql/data" for src, dst in mounts), (mounts, named)


@pytest.mark.parametrize("name", [*APP_SERVICES, *INFRA_SERVICES, PORTAL])
def test_every_service_has_a_healthcheck(name):
    hc = services()[name].get("healthcheck")
    assert hc and not hc.get("disable"), f"{name} has no healthcheck"
    assert hc["test"][0] in ("CMD", "CMD-SHELL"), hc


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_broker_and_db_and_the_provisioning_step(name):
    deps = services()[name].get("depends_on")
    assert isinstance(deps, dict), f"{name}: depends_on must use the long form with conditions"
    for infra in INFRA_SERVICES:
        assert deps.get(infra, {}).get("condition") == "service_healthy", (name, deps)
    assert deps.get(ONE_SHOT, {}).get("condition") == "service_completed_successfully", (name, deps)


def test_the_provisioning_step_runs_once_as_the_database_administrator():
    svc = services()[ONE_SHOT]
    assert _command(svc) == ["python", "-m", "services.provisioning", "database"]
    assert svc.get("restart", "no") == "no"
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = svc["environment"]
    assert env["DATABASE_URL"] == "postgresql://arcserve:arcserve@postgres:5432/arcserve"
    assert env["ARCSERVE_API_KEYS"] == "acme:acme-demo-key,globex:globex-demo-key"
    assert {f"{name.upper().replace('-', '_')}_PASSWORD" for name in APP_SERVICES} <= set(env)


def _mounts(service: str) -> set[tuple[str, ...]]:
    return {
        (tuple(v.split(":")[:2]) if isinstance(v, str) else (v.get("source"), v.get("target")))
        for v in services()[service].get("volumes", [])
    }


def test_the_broker_loads_the_committed_definitions_at_boot_and_they_match_the_code():
    mounts = _mounts("rabbitmq")
    definitions = ROOT / "deploy" / "rabbitmq" / "definitions.json"
    conf = ROOT / "deploy" / "rabbitmq" / "30-definitions.conf"
    assert (str(definitions), "/etc/rabbitmq/definitions.json") in mounts, mounts
    assert (str(conf), "/etc/rabbitmq/conf.d/30-definitions.conf") in mounts, mounts
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf.read_text()
    regenerated = subprocess.run(
        [sys.executable, "-m", "services.provisioning", "definitions", "--deterministic", "--admin", "arcserve:arcserve",
         "--compose", str(COMPOSE_FILE)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert regenerated.returncode == 0, regenerated.stderr
    assert json.loads(definitions.read_text()) == json.loads(regenerated.stdout), \
        "deploy/rabbitmq/definitions.json is stale: run `make definitions`"


def test_the_broker_refuses_messages_past_its_size_limit_above_the_services_own():
    from shared.contracts.envelope import MAX_MESSAGE_BYTES

    conf = ROOT / "deploy" / "rabbitmq" / "20-limits.conf"
    assert (str(conf), "/etc/rabbitmq/conf.d/20-limits.conf") in _mounts("rabbitmq")
    [limit] = re.findall(r"^max_message_size = (\d+)$", conf.read_text(), re.MULTILINE)
    assert MAX_MESSAGE_BYTES < int(limit) <= 16 * 1024 * 1024  # RabbitMQ's own default is 128 MiB


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_healthcheck_probes_its_own_readyz(name):
    _, port = APP_SERVICES[name]
    probe = services()[name]["healthcheck"]["test"]
    assert probe == ["CMD", "python", "-m", "shared.http.healthcheck", f"http://127.0.0.1:{port}/readyz"], probe
    assert (ROOT / "shared" / "http" / "healthcheck.py").is_file()


@pytest.mark.parametrize("name", [*APP_SERVICES, *INFRA_SERVICES])
def test_healthcheck_arguments_have_no_spaces(name):
    # Podman 4's Docker API splits each argument of a health check at spaces.
    probe = services()[name]["healthcheck"]["test"]
    assert not any(" " in arg for arg in probe), probe


def test_broker_is_healthy_only_once_amqp_accepts_connections():
    # `ping` answers while the node still boots; the listener check waits for AMQP's port.
    assert services()["rabbitmq"]["healthcheck"]["test"][1:] == ["rabbitmq-diagnostics", "-q", "check_port_connectivity"]


def test_local_images_override_swaps_only_the_images():
    merged = compose_config(COMPOSE_FILE, LOCAL_IMAGES_FILE)["services"]
    assert merged["rabbitmq"]["image"] == "localhost/arcserve-rabbitmq:bookworm"
    assert merged["postgres"]["image"] == "localhost/arcserve-postgres:bookworm"
    for name in [*APP_SERVICES, ONE_SHOT, PORTAL]:
        assert merged[name]["image"] == "localhost/arcserve-licensing:local"
        assert merged[name]["build"]["args"] == {"BASE_IMAGE": "localhost/arcserve-debian:bookworm"}
        # Everything else is the main file's.
        unchanged = {k: v for k, v in merged[name].items() if k not in ("image", "build")}
        assert unchanged == {k: v for k, v in services()[name].items() if k not in ("image", "build")}
    build_script = (ROOT / "scripts" / "containers" / "build-images.sh").read_text()
    for image in ("localhost/arcserve-rabbitmq:", "localhost/arcserve-postgres:", "localhost/arcserve-debian:",
                  "localhost/arcserve-licensing:local"):
        assert image in build_script, f"{image} is not built by scripts/containers/build-images.sh"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_its_module_from_the_shared_image(name):
    svc = services()[name]
    module, _ = APP_SERVICES[name]
    assert _command(svc) == ["python", "-m", module]
    assert Path(svc["build"]["context"]).resolve() == ROOT
    assert svc["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
    assert svc["restart"] == "unless-stopped"
    assert _seconds(svc["stop_grace_period"]) == 30
    images = {services()[n].get("image") for n in APP_SERVICES}
    assert len(images) == 1 and None not in images, f"app services must share one image tag: {images}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_connects_with_its_own_credentials_never_the_administrators(name):
    env = services()[name]["environment"]
    prefix = name.upper().replace("-", "_")
    password = services()[ONE_SHOT]["environment"][f"{prefix}_PASSWORD"]
    assert env[f"{prefix}_AMQP_URL"] == f"amqp://arcserve-{name}:{password}@rabbitmq:5672/"
    role = "arcserve_" + name.replace("-", "_")
    assert env[f"{prefix}_DATABASE_URL"] == f"postgresql://{role}:{password}@postgres:5432/arcserve"
    assert not {"AMQP_URL", "DATABASE_URL", "ARCSERVE_API_KEYS"} & set(env), "no administrator's settings"
    for var in ("ARCSERVE_SIM_NEW_DELAY_S", "ARCSERVE_SIM_CHANGE_DELAY_S", "LOG_LEVEL"):
        assert var in env, f"{name}: {var} missing"
    port_var = f"{prefix}_PORT"
    assert env.get(port_var) == str(APP_SERVICES[name][1]), f"{name}: {port_var}={env.get(port_var)!r}"


def _published(svc: dict) -> set[tuple[int, int]]:
    pairs = set()
    for p in svc.get("ports", []):
        if isinstance(p, dict):  # long form, as both tools normalise to
            if p.get("published") not in (None, ""):
                pairs.add((int(p["published"]), int(p["target"])))
        else:
            host, _, target = str(p).rpartition(":")
            if host:
                pairs.add((int(host.rpartition(":")[2]), int(target.split("/")[0])))
    return pairs


def test_published_ports():
    for name, svc in services().items():
        ports = _published(svc)
        if name in PUBLISHED:
            assert (PUBLISHED[name], PUBLISHED[name]) in ports, (name, ports)
        elif name in APP_SERVICES:
            assert not ports, f"{name} should not publish to the host: {ports}"
    assert {(5672, 5672), (15672, 15672)} <= _published(services()["rabbitmq"])
    # The console is the provider's operators', never the tenants': on the host's loopback alone.
    assert all(p.get("host_ip") == "127.0.0.1" if isinstance(p, dict) else str(p).startswith("127.0.0.1:")
               for p in services()["backoffice"]["ports"])


def test_every_compose_module_exists_in_repo():
    modules = _service_modules()
    assert set(modules) == set(APP_SERVICES) | {ONE_SHOT, PORTAL}, modules
    missing = [
        f"{m} (expected {Path(*m.split('.'), '__main__.py')})"
        for m in modules.values()
        if not (ROOT.joinpath(*m.split("."), "__main__.py")).is_file()
    ]
    assert not missing, f"compose runs modules with no __main__.py: {missing}"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    joined, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    if pending:
        joined.append(pending)
    out = []
    for line in joined:
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    return out


def test_dockerfile_base_is_pinned_python311_slim_by_default():
    instrs = _dockerfile_instructions()
    froms = [a for i, a in instrs if i == "FROM"]
    assert froms == ["${BASE_IMAGE}"], froms
    args = dict(a.partition("=")[::2] for i, a in instrs if i == "ARG")
    # A current 3.11 patch release, pinned by the digest of its (multi-platform) index.
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?@sha256:[0-9a-f]{64}", args.get("BASE_IMAGE", "")), args


def test_dockerfile_runs_exec_form_as_non_root():
    instrs = _dockerfile_instructions()
    # Exec form (JSON array) so python is PID 1 and gets SIGTERM, not a /bin/sh wrapper.
    for kind in ("CMD", "ENTRYPOINT"):
        for args in (a for i, a in instrs if i == kind):
            try:
                parsed = json.loads(args)
            except json.JSONDecodeError:
                parsed = None
            assert isinstance(parsed, list) and parsed, f"{kind} must use exec form: {args}"
    assert any(i == "CMD" for i, _ in instrs) or any(i == "ENTRYPOINT" for i, _ in instrs)

    users = [a for i, a in instrs if i == "USER"]
    assert users, "Dockerfile never switches away from root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"final USER is {users[-1]}"


def test_dockerfile_copies_code_after_dependencies():
    instrs = _dockerfile_instructions()
    copies = [a for i, a in instrs if i == "COPY"]
    idx = {a.split()[0].rstrip("/"): n for n, a in enumerate(copies)}
    assert {"requirements.txt", "shared", "services"} <= set(idx), copies
    assert idx["requirements.txt"] < idx["shared"] and idx["requirements.txt"] < idx["services"]
    env = " ".join(a for i, a in instrs if i == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env


def test_dockerignore_keeps_dev_files_out_of_the_image():
    entries = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", ".run"} <= entries, entries


def test_no_secret_is_written_in_the_compose_file_and_the_demo_ones_say_so():
    """Secrets come from env files (ARCSERVE_COMPOSE_SECRETS, default deploy/compose/demo/),
    one per service, each holding only that service's own; the committed ones are marked demo."""
    raw = COMPOSE_FILE.read_text()
    assert not re.search(r"://[^/\s:@]+:[^@\s]+@", raw), "a URL with a password in docker-compose.yml"
    assert not re.search(r"^\s+\w*(PASSWORD|SECRET|PEPPER|KEYRING)\w*:", raw, re.MULTILINE), "a secret in docker-compose.yml"
    demo = ROOT / "deploy" / "compose" / "demo"
    for name in [*APP_SERVICES, ONE_SHOT, "postgres", PORTAL]:
        assert [f"${{ARCSERVE_COMPOSE_SECRETS:-./deploy/compose/demo}}/{name}.env"] == \
            yaml_services()[name]["env_file"], name
        text = (demo / f"{name}.env").read_text()
        assert text.startswith("# DEMO VALUES for the local compose stack only"), name
    # Each service gets its own credentials only: no other service's password reaches it.
    for name in APP_SERVICES:
        env = services()[name]["environment"]
        others = [o for o in APP_SERVICES if o != name]
        assert not [k for k in env if any(k.startswith(o.upper().replace("-", "_") + "_") for o in others)], name


def test_the_broker_keeps_its_data_on_a_volume_under_a_fixed_hostname():
    svc = services()["rabbitmq"]
    # The node's name (rabbit@<hostname>) names its data directory: a new container must find it.
    assert svc["hostname"] == "rabbitmq"
    named = set(compose_config().get("volumes") or {})
    assert any(src in named and dst == "/var/lib/rabbitmq" for src, dst in _mounts("rabbitmq")), _mounts("rabbitmq")


def test_the_broker_serves_prometheus_to_the_network_in_both_images():
    assert "15692" in [str(port) for port in services()["rabbitmq"]["expose"]]
    assert not [p for p in _published(services()["rabbitmq"]) if p[1] == 15692]
    # The official image enables rabbitmq_prometheus itself; the local one from Debian's packages too.
    dockerfile = (ROOT / "deploy" / "images" / "rabbitmq" / "Dockerfile").read_text()
    assert re.search(r"rabbitmq-plugins enable --offline [^\n]*\brabbitmq_prometheus\b", dockerfile)
    assert re.search(r"^EXPOSE .*\b15692\b", dockerfile, re.MULTILINE)


@pytest.mark.parametrize("name", METRICS_PORTS)
def test_every_service_serves_metrics_on_its_internal_port_to_the_network_only(name):
    svc = services()[name]
    port = METRICS_PORTS[name]
    assert svc["environment"][f"{name.upper().replace('-', '_')}_METRICS_PORT"] == str(port)
    assert str(port) in [str(p) for p in svc["expose"]]
    assert not [p for p in _published(svc) if p[1] == port], f"{name} publishes its metrics port"


@pytest.mark.parametrize("name", METRICS_PORTS)
def test_traces_are_off_unless_asked_for_and_go_to_the_profiles_collector(name):
    env = services()[name]["environment"]
    assert env["OTEL_TRACES_EXPORTER"] == "none"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    asked = compose_config(env=(("OTEL_TRACES_EXPORTER", "otlp"),))["services"][name]["environment"]
    assert asked["OTEL_TRACES_EXPORTER"] == "otlp"


def observability() -> dict:
    return compose_config(profiles=("observability",))["services"]


def test_the_observability_profile_is_valid_and_only_its_own():
    found = observability()
    assert set(found) == set(APP_SERVICES) | set(INFRA_SERVICES) | {ONE_SHOT, PORTAL, *OBSERVABILITY}
    for name in OBSERVABILITY:
        assert found[name]["profiles"] == ["observability"], name
        # Pinned: a registry's `latest` would change what the profile runs under our feet.
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", found[name]["image"]), found[name]["image"]
    # Its UIs ask no password: published on loopback only.
    for name, port in (("jaeger", 16686), ("prometheus", 9090)):
        [published] = [p for p in found[name]["ports"]]
        host_ip = published.get("host_ip") if isinstance(published, dict) else str(published).split(":")[0]
        assert host_ip == "127.0.0.1" and _published(found[name]) == {(port, port)}, published


def _config_file(service: str, target: str) -> Path:
    mounts = {dst: src for src, dst in (
        (tuple(v.split(":")[:2]) if isinstance(v, str) else (v.get("source"), v.get("target")))
        for v in observability()[service].get("volumes", []))}
    source = Path(mounts[target])
    assert source.is_relative_to(OBSERVABILITY_CONFIG) and source.is_file(), source
    return source


def test_the_collector_takes_otlp_over_http_and_hands_traces_to_jaeger():
    import yaml

    config = yaml.safe_load(_config_file("otel-collector", "/etc/otelcol/config.yaml").read_text())
    assert observability()["otel-collector"]["command"] == ["--config=/etc/otelcol/config.yaml"]
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    [pipeline] = config["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert [config["exporters"][e]["endpoint"] for e in pipeline["exporters"]] == ["jaeger:4317"]
    assert "4317" in [str(p) for p in observability()["jaeger"]["expose"]]


def test_prometheus_scrapes_every_metrics_port_and_the_brokers():
    import yaml

    config = yaml.safe_load(_config_file("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    targets = {target for job in config["scrape_configs"] for group in job["static_configs"]
               for target in group["targets"]}
    assert {f"{name}:{port}" for name, port in METRICS_PORTS.items()} | {"rabbitmq:15692"} == targets
    assert all(job.get("metrics_path", "/metrics").startswith("/metrics") for job in config["scrape_configs"])
