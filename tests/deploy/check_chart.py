#!/usr/bin/env python3
"""Checks the Helm chart charts/vaxcred offline: lints it, renders it with the default values and
with each example values file, validates every rendered manifest against the Kubernetes JSON
schemas of a fixed Kubernetes version (strict: unknown fields are errors), and checks what the
deployment must contain (probes on the health endpoints, non-root pods, one Deployment per
service in split mode, HPAs for the workers, the Ingress paths). Exits non-zero on any error and
prints what it checked."""

from __future__ import annotations

import sys
from pathlib import Path

import helm_python
import kubernetes_validate
import yaml

KUBE_VERSION = "1.33.0"
REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "vaxcred"
RELEASE, NAMESPACE = "vax", "vaxcred"

errors: list[str] = []


def fail(msg: str) -> None:
    errors.append(msg)
    print(f"  ERROR {msg}")


def load_values(path: Path | None) -> dict:
    if path is None:
        return {}
    return yaml.safe_load(path.read_text()) or {}


def lint(label: str, values: dict) -> None:
    report = helm_python.lint(str(CHART), values, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    for m in report.get("messages", []):
        sev = m.get("severity")
        line = f"lint[{label}] {m.get('path')}: {m.get('error')}"
        if sev == 3:
            fail(line)
        elif sev == 2:
            print(f"  warning {line}")
    for e in report.get("errors", []) or []:
        fail(f"lint[{label}] {e}")
    print(f"  lint[{label}]: {report.get('total_charts_linted')} chart(s) linted")


def render(label: str, values: dict) -> list[dict]:
    try:
        out = helm_python.Chart.load(str(CHART)).render(values, name=RELEASE, namespace=NAMESPACE)
    except helm_python.HelmError as e:
        fail(f"render[{label}]: {e}")
        return []
    docs = []
    for template, text in sorted(out.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
                docs.append(doc)
    return docs


def validate(label: str, docs: list[dict]) -> None:
    for doc in docs:
        ident = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"schema[{label}] {ident}: {e.message} at {'/'.join(map(str, e.path))}")
        except Exception as e:  # a schema missing for the kind is an error too
            fail(f"schema[{label}] {ident}: {type(e).__name__}: {e}")
    print(f"  schema[{label}]: {len(docs)} manifest(s) validated against Kubernetes {KUBE_VERSION}")


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def check_common(label: str, docs: list[dict]) -> None:
    deployments = of_kind(docs, "Deployment")
    services = of_kind(docs, "Service")
    if not deployments:
        fail(f"content[{label}]: no Deployment rendered")
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            fail(f"content[{label}] {name}: pod may run as root")
        for c in pod["containers"]:
            live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
            ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
            if (live, ready) != ("/health/live", "/health/ready"):
                fail(f"content[{label}] {name}: probes are {live!r}, {ready!r}")
            if not c.get("resources", {}).get("requests"):
                fail(f"content[{label}] {name}: no resource requests")
        if name not in services:
            fail(f"content[{label}] {name}: no Service of the same name")
    if "vax-vaxcred" not in of_kind(docs, "ConfigMap"):
        fail(f"content[{label}]: ConfigMap missing")


def expect(label: str, docs: list[dict], kind: str, names: set[str]) -> None:
    got = set(of_kind(docs, kind))
    if got != names:
        fail(f"content[{label}]: {kind} names {sorted(got)} != expected {sorted(names)}")


def main() -> int:
    print(f"chart {CHART.relative_to(REPO)} (helm SDK {helm_python.helm_sdk_version()}, Kubernetes {KUBE_VERSION})")
    cases = [
        ("defaults", None),
        ("production", CHART / "ci" / "values-production.yaml"),
        ("serve-ingress", CHART / "ci" / "values-serve-ingress.yaml"),
    ]
    for label, path in cases:
        print(f"- {label}: {path.relative_to(REPO) if path else 'values.yaml only'}")
        values = load_values(path)
        lint(label, values)
        docs = render(label, values)
        validate(label, docs)
        check_common(label, docs)
        if label == "defaults":
            expect(label, docs, "Deployment", {"vax-vaxcred-serve"})
            expect(label, docs, "PersistentVolumeClaim", {"vax-vaxcred-data"})
            expect(label, docs, "Secret", {"vax-vaxcred-env"})
            expect(label, docs, "HorizontalPodAutoscaler", set())
        elif label == "production":
            expect(label, docs, "Deployment", {f"vax-vaxcred-{s}" for s in ("ingest", "issuer", "delivery", "launch")})
            expect(label, docs, "HorizontalPodAutoscaler", {f"vax-vaxcred-{s}" for s in ("ingest", "issuer", "delivery")})
            expect(label, docs, "Secret", {"vax-vaxcred-env", "vax-vaxcred-keys"})
            expect(label, docs, "PersistentVolumeClaim", set())
            ing = of_kind(docs, "Ingress").get("vax-vaxcred")
            if ing is None:
                fail(f"content[{label}]: Ingress missing")
            else:
                paths = {p["path"]: p["backend"]["service"]["name"] for p in ing["spec"]["rules"][0]["http"]["paths"]}
                if paths.get("/.well-known") != "vax-vaxcred-issuer":
                    fail(f"content[{label}]: /.well-known routes to {paths.get('/.well-known')}")
                if not ing["spec"].get("tls"):
                    fail(f"content[{label}]: Ingress without TLS")
        elif label == "serve-ingress":
            ing = of_kind(docs, "Ingress").get("vax-vaxcred")
            backends = {p["backend"]["service"]["name"] for p in ing["spec"]["rules"][0]["http"]["paths"]} if ing else set()
            if backends != {"vax-vaxcred-serve"}:
                fail(f"content[{label}]: Ingress backends {sorted(backends)} != serve only")
    if errors:
        print(f"chart check FAILED: {len(errors)} error(s)")
        return 1
    print("chart check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
