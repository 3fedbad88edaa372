"""Refresh the vendored KubeRay schemas in tests/cluster/kuberay_schemas/ from KubeRay's CRD files.

    python tests/cluster/vendor_kuberay_schemas.py /path/to/kuberay/ray-operator/config/crd/bases

Only what the manifest tests need is kept: each CRD's `v1` openAPIV3Schema, with descriptions dropped (they are
most of the bytes), as compact JSON. The CRDs themselves stay KubeRay's (Apache-2.0); SOURCE.md says which commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

KINDS = {"RayCluster": "rayclusters", "RayJob": "rayjobs", "RayService": "rayservices"}
HERE = Path(__file__).resolve().parent / "kuberay_schemas"


def without_descriptions(node):
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def main(crd_folder: str) -> None:
    for kind, plural in KINDS.items():
        path = Path(crd_folder) / f"ray.io_{plural}.yaml"
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        schema = without_descriptions(version["schema"]["openAPIV3Schema"])
        (HERE / f"{kind.lower()}.json").write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
        print(f"{path} -> {HERE / (kind.lower() + '.json')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/kuberay-crds")
