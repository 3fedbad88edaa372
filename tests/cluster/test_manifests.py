"""The cluster files as data: KubeRay manifests against KubeRay's CRD schemas (strictly: an unknown field is an
error, as `kubectl apply --validate=strict` makes it), the launcher YAMLs against Ray's cluster schema, and the
promises the docs make about them (token auth on, credentials only from Secrets, one Ray version, the serve
config in the RayService equal to configs/serve.yaml)."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import REPO

SCHEMAS = Path(__file__).resolve().parent / "kuberay_schemas"
MANIFESTS = sorted((REPO / "k8s").glob("*.yaml"))
LAUNCHER_FILES = sorted((REPO / "cluster").glob("*.yaml"))
SECRET_ENV = re.compile(r"^(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|RAY_AUTH_TOKEN)$")


def strict(schema):
    """A Kubernetes structural schema as JSON Schema that rejects unknown fields (the API server would prune
    them silently; strict validation reports them) and accepts int-or-string where Kubernetes does."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if "properties" in schema and "additionalProperties" not in schema \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(strict(json.loads((SCHEMAS / f"{kind.lower()}.json").read_text())))


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def problems(document: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator(document["kind"]).iter_errors(document)]


def cluster_specs(document: dict) -> list[dict]:
    """The RayCluster specs a manifest holds: its own, or the one a RayJob or RayService creates."""
    spec = document["spec"]
    return {"RayCluster": [spec], "RayJob": [spec.get("rayClusterSpec")],
            "RayService": [spec.get("rayClusterConfig")]}[document["kind"]]


def containers(cluster: dict) -> list[dict]:
    groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def ray_version() -> str:
    """The Ray release pyproject.toml pins (ray[...]>=2.60,<2.61 -> 2.60)."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return re.search(r"ray\[[^\]]*\]>=(\d+\.\d+)", " ".join(dependencies)).group(1)


def test_there_is_a_raycluster_a_rayjob_and_a_rayservice():
    kinds = sorted(d["kind"] for path in MANIFESTS for d in documents(path))
    assert kinds == ["RayCluster", "RayJob", "RayService"], kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_satisfies_its_kuberay_crd_schema(path):
    for document in documents(path):
        assert document["apiVersion"] == "ray.io/v1"
        assert problems(document) == [], path


def test_the_strict_schema_catches_a_misspelt_field_and_a_wrong_type():
    """The check above can fail: a typo three levels down and a string where a number belongs are reported."""
    document = documents(REPO / "k8s" / "raycluster.yaml")[0]
    typo = copy.deepcopy(document)
    typo["spec"]["workerGroupSpecs"][0]["maxReplica"] = typo["spec"]["workerGroupSpecs"][0].pop("maxReplicas")
    assert any("maxReplica" in p for p in problems(typo))
    wrong_type = copy.deepcopy(document)
    wrong_type["spec"]["workerGroupSpecs"][0]["replicas"] = "two"
    assert any(p.startswith("spec.workerGroupSpecs.0.replicas") for p in problems(wrong_type))
    no_auth_mode = copy.deepcopy(document)
    no_auth_mode["spec"]["authOptions"] = {"mode": "password"}
    assert any("authOptions" in p for p in problems(no_auth_mode))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_cluster_has_token_auth_autoscaling_and_a_cpu_and_a_gpu_group(path):
    for document in documents(path):
        for cluster in cluster_specs(document):
            assert cluster["authOptions"]["mode"] == "token", path
            assert cluster["enableInTreeAutoscaling"] is True
            assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # work goes to the groups
            groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
            assert {"cpu", "gpu"} <= set(groups)
            for group in groups.values():
                assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
            gpu = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]
            assert gpu["limits"]["nvidia.com/gpu"] == "1" and gpu["requests"]["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_credentials_come_only_from_secrets(path):
    text = path.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{12,}", text), "an AWS access key in a manifest"
    for document in documents(path):
        for cluster in cluster_specs(document):
            for container in containers(cluster):
                env = {e["name"]: e for e in container.get("env", [])}
                assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env), container["name"]
                for name, entry in env.items():
                    if SECRET_ENV.match(name) or name.startswith("AWS_"):
                        assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], (path, name)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_ray_version_matches_the_pinned_ray_and_the_image(path):
    pinned = ray_version()
    base = re.search(r"ARG BASE=rayproject/ray:(\S+)", (REPO / "k8s" / "Dockerfile").read_text()).group(1)
    assert base.startswith(pinned + ".")
    for document in documents(path):
        for cluster in cluster_specs(document):
            assert cluster["rayVersion"] == base.split("-")[0], path
            for container in containers(cluster):
                assert container["image"].startswith("ghcr.io/mmrec/mmrec:"), container["image"]


def test_the_rayservice_serves_configs_serve_yaml_with_only_the_cluster_settings_changed(tmp_path):
    service = next(d for path in MANIFESTS for d in documents(path) if d["kind"] == "RayService")
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    shipped = yaml.safe_load((REPO / "configs" / "serve.yaml").read_text())
    # What a cluster changes, and nothing else: listen on every interface; name the artifact root and the
    # model outright (a replica's working directory holds no mmrec config file).
    assert embedded["http_options"]["host"] == "0.0.0.0"
    args = embedded["applications"][0]["args"]
    assert args["artifact_root"].startswith("s3://") and args["model"] and args["config"] == ""
    expected = copy.deepcopy(shipped)
    expected["http_options"]["host"] = "0.0.0.0"
    expected["applications"][0]["args"].update(config="", artifact_root=args["artifact_root"], model=args["model"])
    assert embedded == expected
    from mmrec.serve.config import AppArgs
    from mmrec.serve.run import read_serve_file

    AppArgs.model_validate(args)
    path = tmp_path / "serve.yaml"
    path.write_text(service["spec"]["serveConfigV2"])
    assert read_serve_file(str(path))["deployments"].keys() == {"Ingress", "Recommender"}


def test_the_rayservice_nodes_run_serves_high_throughput_data_plane():
    from mmrec.serve.config import HIGH_THROUGHPUT_ENV

    service = next(d for path in MANIFESTS for d in documents(path) if d["kind"] == "RayService")
    for container in containers(service["spec"]["rayClusterConfig"]):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert HIGH_THROUGHPUT_ENV.items() <= env.items(), container["name"]


def test_the_rayjob_runs_the_pipeline_entrypoint_on_a_shipped_config():
    job = next(d for path in MANIFESTS for d in documents(path) if d["kind"] == "RayJob")
    entrypoint = job["spec"]["entrypoint"].split()
    assert entrypoint[:2] == ["python", "jobs/pipeline.py"]
    config = entrypoint[entrypoint.index("--config") + 1]
    assert (REPO / config).is_file()
    assert entrypoint[entrypoint.index("--artifact-root") + 1].startswith("s3://")
    assert job["spec"]["shutdownAfterJobFinishes"] is True


# --- Ray cluster launcher files ---------------------------------------------------------------------------

def launcher_validator() -> jsonschema.Draft7Validator:
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


def test_there_are_aws_and_local_launcher_files():
    providers = sorted(yaml.safe_load(p.read_text())["provider"]["type"] for p in LAUNCHER_FILES)
    assert providers == ["aws", "local"], providers


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_each_launcher_file_satisfies_rays_cluster_schema(path):
    config = yaml.safe_load(path.read_text())
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in launcher_validator().iter_errors(config)]
    assert errors == [], path
    broken = {**config, "max_worker": config.get("max_workers", 1)}
    assert list(launcher_validator().iter_errors(broken)), "the schema check can fail"


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_each_launcher_file_starts_every_node_with_token_auth(path):
    config = yaml.safe_load(path.read_text())
    token = "~/.ray/auth_token"
    assert config["file_mounts"].get(token) == token, "the same token file goes to every node"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in config[key] if "ray start" in c]
        assert start and all("RAY_AUTH_MODE=token" in c for c in start), (path, key)
    assert not re.search(r"AKIA[0-9A-Z]{12,}", path.read_text())


def test_the_aws_file_has_cpu_and_gpu_worker_types_that_autoscale():
    config = yaml.safe_load((REPO / "cluster" / "aws.yaml").read_text())
    types = config["available_node_types"]
    workers = {name: t for name, t in types.items() if name != config["head_node_type"]}
    assert any(t["resources"].get("GPU", 0) >= 1 for t in workers.values())
    assert any(not t["resources"].get("GPU") for t in workers.values())
    assert all(t.get("min_workers", 0) < t["max_workers"] for t in workers.values())
    assert types[config["head_node_type"]]["resources"].get("CPU") == 0  # the head schedules no work
