"""A tiny ``kubectl kustomize`` for the tests: the subset of kustomize that deploy/kubernetes/ uses.

Resources (files and directories), components, patches by file (strategic merge; the patch names its target),
``images`` and ``namespace``. Anything else in a kustomization, or a list merge whose kustomize semantics are not
modelled here, fails loudly, so the overlays cannot drift into features the renderer would get wrong.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "resources", "components", "patches", "images"}
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath"}  # strategic-merge keys of the lists our patches may touch
REPLACED_LISTS = {"egress", "ingress", "policyTypes", "command", "args"}  # lists kustomize replaces whole


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def merge(base: Any, patch: Any, key: str = "") -> Any:
    """Strategic merge as kustomize does it for the fields our patches use; unknown list merges fail."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:  # strategic merge: null deletes the field
                out.pop(k, None)
            else:
                out[k] = merge(base[k], v, k) if k in base else v
        return out
    if isinstance(base, list) and isinstance(patch, list):
        if key in REPLACED_LISTS:
            return patch
        if key not in MERGE_KEYS:
            raise NotImplementedError(f"the test's renderer does not know how kustomize merges list {key!r}")
        by = MERGE_KEYS[key]
        out = list(base)
        for item in patch:
            at = [i for i, old in enumerate(out) if old[by] == item[by]]
            if at:
                out[at[0]] = merge(out[at[0]], item)
            else:
                out.append(item)
        return out
    return patch


def resource_id(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else "", doc["kind"], doc["metadata"]["name"]


def render(directory: Path, accumulated: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """``kubectl kustomize directory`` for the subset of kustomize the overlays use."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unsupported, f"{directory}: unsupported {unsupported}"
    assert kustomization["kind"] == ("Component" if accumulated is not None else "Kustomization"), directory
    docs = list(accumulated or [])
    for entry in kustomization.get("resources", []):
        path = directory / entry
        docs += render(path) if path.is_dir() else load_docs(path)
    for entry in kustomization.get("components", []):
        docs = render(directory / entry, docs)
    for entry in kustomization.get("patches", []):
        assert set(entry) == {"path"}, f"{directory}: only patches by file (the file names its target)"
        for patch in load_docs(directory / entry["path"]):
            targets = [i for i, doc in enumerate(docs) if resource_id(doc) == resource_id(patch)]
            assert len(targets) == 1, f"{directory}/{entry['path']}: no single target"
            docs[targets[0]] = merge(docs[targets[0]], patch)
    docs = copy.deepcopy(docs)
    for image in kustomization.get("images", []):
        for container in (c for doc in docs for c in pod_spec(doc).get("containers", [])):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}".rstrip(":")
    if "namespace" in kustomization:
        for doc in docs:
            doc["metadata"]["namespace"] = kustomization["namespace"]
    ids = [(*resource_id(doc), doc["metadata"].get("namespace", "")) for doc in docs]
    assert len(ids) == len(set(ids)), f"{directory}: duplicate resources"
    return docs


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.get("spec", {}).get("template", {}).get("spec", {}) if doc["kind"] == "Deployment" else {}
