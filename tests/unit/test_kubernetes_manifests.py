"""deploy/kubernetes/, checked offline: no cluster, no kubectl or kustomize binary.

Every manifest and every rendered overlay must pass the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail) for the oldest and newest Kubernetes we claim, and must agree with the service
itself: each CDS_* variable is a real setting with a value of the right type, the port and probe paths are the
ones the service listens on and routes, the image and user are the Dockerfile's, the resources are sized for
the configured workers. The overlays are rendered by tests/kustomize.py, which implements only the small subset
of kustomize they use and fails on anything else.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import shutil
import subprocess
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cds_service.clinical.topic import load_topics
from cds_service.settings import SETTINGS, load_settings
from tests.kustomize import load_docs, merge, render

REPO = Path(__file__).resolve().parents[2]
KUBE = REPO / "deploy" / "kubernetes"
OVERLAYS = sorted(p.parent.name for p in (KUBE / "overlays").glob("*/kustomization.yaml"))
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.latest_version())  # oldest we claim, newest the validator has
CRD_GROUPS = ("monitoring.coreos.com/",)  # kubernetes-validate ships no schemas for these: checked structurally
MB_PER_WORKER, MASTER_MB = 150, 50  # README.md "Performance": peak RSS per worker; the gunicorn master


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def megabytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi|M|G)", quantity).groups()
    return float(number) * {"Mi": 1.048576, "Gi": 1073.741824, "M": 1, "G": 1000}[unit]


def cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def cli_module() -> Any:
    """The module behind the `cds-service` command, found by its entry point (it may move between packages)."""
    return importlib.import_module(entry_points(group="console_scripts")["cds-service"].module)


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(KUBE / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, list[str]]:
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    by_name: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, rest = line.split(None, 1)
            by_name.setdefault(name.upper(), []).append(rest)
    return by_name


@pytest.fixture(scope="module")
def routes() -> set[str]:
    """The paths cds_service/web.py routes (read from its source, so no import of the app)."""
    tree = ast.parse((REPO / "cds_service" / "web.py").read_text())
    return {d.args[0].value for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            for d in node.decorator_list if isinstance(d, ast.Call) and d.args and isinstance(d.args[0], ast.Constant)}


def kustomization_entries(field: str) -> set[Path]:
    """Every file a kustomization lists under ``resources`` or ``patches``."""
    found = set()
    for kustomization in KUBE.rglob("kustomization.yaml"):
        for entry in yaml.safe_load(kustomization.read_text()).get(field, []):
            path = (kustomization.parent / (entry["path"] if isinstance(entry, dict) else entry)).resolve()
            if path.is_file():
                found.add(path)
    return found


EXAMPLE_SECRET = KUBE / "overlays" / "production" / "secret.example.yaml"  # for operators, never applied
RESOURCE_FILES = sorted(kustomization_entries("resources") | {EXAMPLE_SECRET})  # patches are partial: not here


def assert_valid(doc: dict[str, Any]) -> None:
    if doc["apiVersion"].startswith(CRD_GROUPS):
        return
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on Kubernetes {version}: "
                        f"{'/'.join(map(str, exc.absolute_path))}: {exc.message}")


def test_overlays_exist() -> None:
    assert set(OVERLAYS) == {"production", "development", "production-prometheus"}


def test_renderer_merges_as_kustomize_does() -> None:
    base = {"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}],
                     "egress": [{"ports": [1]}], "replicas": 2}}
    patch = {"spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}], "egress": [{}],
                      "replicas": None}}
    assert merge(base, patch) == {"spec": {"containers": [{"name": "a", "image": "x", "env": [
        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}], "egress": [{}]}}
    with pytest.raises(NotImplementedError):
        merge({"tolerations": [{"key": "a"}]}, {"tolerations": [{"key": "b"}]})


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl here: the renderer alone is used")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_renderer_agrees_with_kubectl_kustomize(overlay: str, rendered: dict) -> None:
    """Where kubectl is installed (it is on the project's machines), its built-in kustomize is the reference."""
    result = subprocess.run(["kubectl", "kustomize", str(KUBE / "overlays" / overlay)], capture_output=True,
                            text=True, timeout=60, check=True)
    by_id = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout)}
    assert by_id == {(d["kind"], d["metadata"]["name"]): d for d in rendered[overlay]}


@pytest.mark.parametrize("path", RESOURCE_FILES, ids=lambda p: str(p.relative_to(KUBE)))
def test_every_manifest_file_passes_the_kubernetes_schemas(path: Path) -> None:
    for doc in load_docs(path):
        assert_valid(doc)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_resource_passes_the_kubernetes_schemas(overlay: str, rendered: dict) -> None:
    docs = rendered[overlay]
    assert {"ServiceAccount", "ConfigMap", "Deployment", "Service", "NetworkPolicy"} <= {d["kind"] for d in docs}
    for doc in docs:
        assert doc["metadata"]["namespace"].startswith("spine-order-cds")
        assert_valid(doc)


def test_every_manifest_file_is_used_by_a_kustomization() -> None:
    every = {p.resolve() for p in KUBE.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert every - kustomization_entries("resources") - kustomization_entries("patches") == {EXAMPLE_SECRET}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_env_names_are_settings_and_values_load(overlay: str, rendered: dict, dockerfile: dict) -> None:
    docs = rendered[overlay]
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    config = one(docs, "ConfigMap")
    assert [s["configMapRef"]["name"] for s in container["envFrom"]] == [config["metadata"]["name"]]
    names = set(config["data"]) | {e["name"] for e in container["env"]}
    assert {n for n in names if n.startswith("CDS_")} <= {s.name for s in SETTINGS}
    assert {n for n in names if not n.startswith("CDS_")} == {"XDG_RUNTIME_DIR"}  # gunicorn's control socket
    secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    plain_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert set(secret_env) == {"CDS_DATABASE_URL"}
    settings = load_settings({**config["data"], "CDS_DATABASE_URL": ""})  # every value coerces to its type
    assert load_topics(settings.criteria)  # the criteria selection names real packs, at most one per topic
    workdir = dockerfile["WORKDIR"][-1]
    assert "hooks ./hooks" in " ".join(dockerfile["COPY"]) and settings.hooks_dir == f"{workdir}/hooks"
    assert f"CDS_DATA_DIR={settings.data_dir}" in dockerfile["ENV"][0]
    assert settings.workers == 2  # the benchmark's worker count, which the resources are derived from
    assert settings.authentication_configured
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[settings.data_dir]] and "emptyDir" in volumes[mounts["/tmp"]]
    assert plain_env == {"XDG_RUNTIME_DIR": "/tmp"}
    issuers = Path(settings.trusted_issuers_file)
    secret_volume = volumes[mounts[str(issuers.parent)]]["secret"]
    assert {k["name"] for k in secret_env.values()} == {secret_volume["secretName"]}
    secrets = [d for d in docs if d["kind"] == "Secret"] or load_docs(EXAMPLE_SECRET)
    assert {issuers.name, secret_env["CDS_DATABASE_URL"]["key"]} <= set(secrets[0]["stringData"])
    assert secrets[0]["metadata"]["namespace"] == config["metadata"]["namespace"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_port_and_probes_are_the_service_s(overlay: str, rendered: dict, dockerfile: dict, routes: set) -> None:
    docs = rendered[overlay]
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    (port,) = container["ports"]
    cli = cli_module()
    assert port["containerPort"] == int(flag(container["command"], "--port"))
    assert port["containerPort"] == cli.build_parser().parse_args(["serve"]).port  # serve's default
    image_cmd = json.loads(dockerfile["CMD"][0])
    assert port["containerPort"] == int(dockerfile["EXPOSE"][0]) == int(flag(image_cmd, "--port"))
    probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "readiness", "liveness")}
    assert {k: p["path"] for k, p in probes.items()} == {"startup": "/healthz", "readiness": "/readyz",
                                                          "liveness": "/healthz"}
    assert {"/healthz", "/readyz", "/metrics"} <= routes
    assert {p["port"] for p in probes.values()} == {port["name"]}
    service = one(docs, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [port["name"]]
    policy = one(docs, "NetworkPolicy")["spec"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [port["containerPort"]]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for selector in (service["spec"]["selector"], policy["podSelector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_is_non_root_read_only_and_authenticated(overlay: str, rendered: dict, dockerfile: dict) -> None:
    spec = one(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    uid = re.search(r"useradd .*--uid (\d+)", " ".join(dockerfile["RUN"])).group(1)
    assert spec["securityContext"]["runAsUser"] == int(uid) and spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "privileged": False,
                                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert spec["automountServiceAccountToken"] is False
    assert container["command"][:2] == ["cds-service", "serve"]
    assert "--allow-unauthenticated" not in container["command"]  # client JWTs are checked


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_fit_the_workers_and_shutdown_is_graceful(overlay: str, rendered: dict) -> None:
    docs = rendered[overlay]
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    resources = spec["containers"][0]["resources"]
    workers = int(one(docs, "ConfigMap")["data"]["CDS_WORKERS"])
    assert megabytes(resources["requests"]["memory"]) >= workers * MB_PER_WORKER + MASTER_MB
    assert megabytes(resources["limits"]["memory"]) > megabytes(resources["requests"]["memory"])
    assert cores(resources["limits"]["cpu"]) == workers  # one core per worker process at most (the GIL)
    assert 0 < cores(resources["requests"]["cpu"]) < cores(resources["limits"]["cpu"])
    sleep = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    cli = cli_module()
    graceful = int(re.search(r'"graceful_timeout": (\d+)', inspect.getsource(cli)).group(1))
    assert spec["terminationGracePeriodSeconds"] > int(sleep[1]) + graceful


def test_production_scales_on_cpu_keeps_a_replica_through_drains_and_allowlists_egress(rendered: dict) -> None:
    docs = rendered["production"]
    deployment, hpa = one(docs, "Deployment"), one(docs, "HorizontalPodAutoscaler")
    pdb, pod_labels = one(docs, "PodDisruptionBudget"), deployment["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    version = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    compose_image = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["cds"]["image"]
    assert image.endswith(f"/{compose_image.split(':')[0]}:{version}")  # same image name, the released tag
    assert not [d for d in docs if d["kind"] == "Secret"]  # the operator creates it; never in git
    egress = one(docs, "NetworkPolicy")["spec"]["egress"]
    assert all(rule.get("to") and rule.get("ports") for rule in egress)
    assert sorted({p["port"] for rule in egress for p in rule["ports"]}) == [53, 443, 5432]
    readme = (KUBE / "README.md").read_text()
    for cidr in (peer["ipBlock"]["cidr"] for rule in egress for peer in rule["to"] if "ipBlock" in peer):
        assert f"`{cidr}`" in readme, f"placeholder {cidr} not documented"
    config = one(docs, "ConfigMap")["data"]
    for value in (config["CDS_PUBLIC_BASE_URL"], config["CDS_FHIR_ALLOWLIST"], image.rsplit(":", 1)[0]):
        assert f"`{value}`" in readme, f"placeholder {value} not documented"


def test_development_is_one_replica_with_the_sandbox_test_issuer(rendered: dict, dockerfile: dict) -> None:
    docs = rendered["development"]
    assert one(docs, "Deployment")["spec"]["replicas"] == 1
    assert not {"HorizontalPodAutoscaler", "PodDisruptionBudget"} & {d["kind"] for d in docs}
    secret = one(docs, "Secret")["stringData"]
    assert secret["database-url"] == ""  # SQLite on the emptyDir
    for name, file in (("trusted-issuers.json", "sandbox-dev.json"), ("sandbox-jwks.json", "sandbox-jwks.json")):
        assert json.loads(secret[name]) == json.loads((REPO / "tests/data/issuers" / file).read_text())
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["cds"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == compose["image"]


def test_service_monitor_scrapes_metrics_through_the_service(rendered: dict, routes: set) -> None:
    """ServiceMonitor is a CRD: kubernetes-validate has no schema for it, so its shape is checked here."""
    docs = rendered["production-prometheus"]
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]} and endpoint["path"] in routes
        interval, timeout = (int(re.fullmatch(r"(\d+)s", endpoint[k]).group(1)) for k in ("interval", "scrapeTimeout"))
        assert 0 < timeout <= interval
    assert [d for d in rendered["production"] if d["kind"] != "ServiceMonitor"] == [
        d for d in docs if d["kind"] != "ServiceMonitor"]


def test_readme_shows_the_operator_commands(rendered: dict) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Deploy on Kubernetes", 1)[1].split("\n## ", 1)[0]
    for overlay in OVERLAYS:
        assert f"kubectl apply -k deploy/kubernetes/overlays/{overlay}" in section
        namespace = one(rendered[overlay], "Deployment")["metadata"]["namespace"]
        assert f"kubectl create namespace {namespace}\n" in section  # the overlays do not create it
    deployment = one(rendered["production"], "Deployment")
    (secret,) = (v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v)
    created = re.search(r"kubectl -n (\S+) create secret generic (\S+) \\\n\s+(.*)", section)
    assert created and created.groups()[:2] == (deployment["metadata"]["namespace"], secret)
    assert set(re.findall(r"--from-file=([^=]+)=", created.group(3))) == set(
        load_docs(EXAMPLE_SECRET)[0]["stringData"])
    assert "deploy/kubernetes/README.md" in section
