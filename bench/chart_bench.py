"""The Helm chart on a real node, timed: install, test, a tenant, an upgrade under load,
uninstall.

    .venv/bin/python bench/chart_bench.py [--no-migrations] [--rps 20]

Starts the harness's stack (control plane, PostgreSQL, Redis, ChromaDB) and a node with the
built image (``start_node_stack``: the tree's image, or ``COACHOPS_NODE_IMAGE_DIR``), creates
the Secrets the chart reads (the stores' URLs at the node's address, a JWT key), then:

1. ``helm install --wait``: the migrations hook (on a database the harness migrated already:
   the second run changes nothing), then operator, runtime and worker pods Ready;
2. ``helm test`` (the test pod calls the runtime's ``/readyz`` through its Service);
3. the kustomize example's Creator until Ready, then its two programs;
4. ``helm upgrade --reuse-values --set logLevel=DEBUG --wait`` (every pod rolls) while
   ``--rps`` requests a second go to ``/readyz`` through the Service: how many failed;
5. ``helm uninstall --wait``: what is left (the CRDs, the Creator, the Secrets).

``--no-migrations`` leaves the hook out, for an image older than the tree's migrations.

``--kustomize`` installs ``manifests/`` instead, under a kustomize overlay that sets the
node's image and store addresses (as ``examples/gitops/platform`` overlays it): the
migrations Job applied first and waited for, then everything with ``kubectl apply
--server-side``, every rollout, ``/readyz`` through the Service, the example's Creator and
programs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml

from coachops_devstack.controlplane import controlplane_bin
from coachops_devstack.node import NODE_IP, Node, start_node_stack
from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.stack import start_stack
from coachops_runtime.auth.keys import generate_key_file

NAMESPACE = "coachops-system"
EXAMPLE = REPO_ROOT / "examples" / "gitops" / "tenants" / "acme-coaching"


def at_node(url: str) -> str:
    """``url`` with its host replaced by the node's address (relayed to the stack)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@" if credentials else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}{NODE_IP}:{parts.port}"))


def since(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"


class Runner:
    def __init__(self, kubeconfig: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        built = subprocess.run(
            [str(REPO_ROOT / "scripts" / "build-helm.sh")],
            capture_output=True,
            text=True,
            check=True,
        )
        self.helm = built.stdout.strip().splitlines()[-1]
        self.kubectl = str(controlplane_bin("kubectl"))

    def run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(list(args), env=self.env, capture_output=True, text=True, input=stdin)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args[:3])} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def k(self, *args: str) -> str:
        return self.run(self.kubectl, *args)

    def h(self, *args: str) -> str:
        return self.run(self.helm, *args)


async def probe(url: str, rps: int, stop: asyncio.Event) -> tuple[int, int]:
    """Requests sent and failed (not 200) until ``stop``."""
    sent = failed = 0
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            sent += 1
            try:
                failed += (await client.get(url)).status_code != 200
            except httpx.HTTPError:
                failed += 1
            await asyncio.sleep(1 / rps)
    return sent, failed


async def helm_flow(
    r: Runner,
    node: Node,
    image: tuple[str, str, str],
    chroma: str,
    args: argparse.Namespace,
    figures: list[tuple[str, str]],
) -> None:
    """Install, test, a tenant, an upgrade under requests, uninstall."""
    registry, repository, tag = image
    values = [
        f"image.registry={registry}",
        f"image.repository={repository}",
        f"image.tag={tag}",
        f"chroma.url={chroma}",
        f"database.tenantHost={NODE_IP}",
        f"redis.tenantHost={NODE_IP}",
        f"migrations.enabled={str(not args.no_migrations).lower()}",
    ]
    sets = [arg for value in values for arg in ("--set", value)]
    release = ("coachops", str(REPO_ROOT / "charts" / "coachops"), "-n", NAMESPACE)

    started = time.monotonic()
    r.h("install", *release, *sets, "--wait", "--timeout", "10m")
    figures.append(("helm install --wait (hook, pods Ready)", since(started)))
    started = time.monotonic()
    r.h("test", "coachops", "-n", NAMESPACE)
    figures.append(("helm test", since(started)))

    started = time.monotonic()
    r.k("apply", "-k", str(EXAMPLE / "creator"))
    r.k("wait", "creator/acme-coaching", "--for=condition=Ready", "--timeout=180s")
    figures.append(("Creator applied -> Ready", since(started)))
    r.k("apply", "-k", str(EXAMPLE / "programs"))

    service = ("-n", NAMESPACE, "get", "service", "coachops-runtime")
    cluster_ip = r.k(*service, "-o", "jsonpath={.spec.clusterIP}")
    port = await node.forward(cluster_ip, 80)
    stop = asyncio.Event()
    load = asyncio.create_task(probe(f"http://127.0.0.1:{port}/readyz", args.rps, stop))
    await asyncio.sleep(2)
    started = time.monotonic()
    await asyncio.to_thread(
        r.h, "upgrade", *release, "--reuse-values", "--set", "logLevel=DEBUG", "--wait"
    )
    figures.append(("helm upgrade --wait (all pods rolled)", since(started)))
    await asyncio.sleep(2)
    stop.set()
    sent, failed = await load
    figures.append(("requests during the upgrade: sent / failed", f"{sent} / {failed}"))

    started = time.monotonic()
    r.h("uninstall", "coachops", "-n", NAMESPACE, "--wait")
    figures.append(("helm uninstall --wait", since(started)))
    left = r.k("get", "crds,creators", "-o", "name").split()
    left += r.k("-n", NAMESPACE, "get", "deployments,secrets", "-o", "name").split()
    figures.append(("left after uninstall", ", ".join(sorted(left))))


def write_overlay(workdir: Path, image: tuple[str, str, str], chroma: str) -> Path:
    """A kustomization over manifests/ with the node's image and store addresses."""
    registry, repository, tag = image
    overlay = workdir / "overlay"
    overlay.mkdir()

    def env_patch(name: str, box: str, env: dict[str, str]) -> dict[str, object]:
        patch = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [
                {"name": box, "env": [{"name": k, "value": v} for k, v in env.items()]}
            ]}}},
        }  # fmt: skip
        return {"target": {"kind": "Deployment", "name": name}, "patch": yaml.safe_dump(patch)}

    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(REPO_ROOT / "manifests", overlay)],
        "images": [
            {
                "name": "ghcr.io/coachops/coachops",
                "newName": f"{registry}/{repository}",
                "newTag": tag,
            }
        ],
        "patches": [
            env_patch(
                "coachops-operator",
                "operator",
                {
                    "COACHOPS_OPERATOR_RUNTIME_IMAGE": f"{registry}/{repository}:{tag}",
                    "COACHOPS_OPERATOR_CHROMA_URL": chroma,
                    "COACHOPS_OPERATOR_DATABASE_HOST": NODE_IP,
                    "COACHOPS_OPERATOR_REDIS_HOST": NODE_IP,
                },
            ),
            env_patch("coachops-runtime", "runtime", {"COACHOPS_CHROMA_URL": chroma}),
            env_patch("coachops-worker", "worker", {"COACHOPS_CHROMA_URL": chroma}),
        ],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return overlay


async def kustomize_flow(
    r: Runner,
    node: Node,
    image: tuple[str, str, str],
    chroma: str,
    workdir: Path,
    figures: list[tuple[str, str]],
) -> None:
    """manifests/ under a kustomize overlay (the node's image and store addresses), as
    examples/gitops/platform overlays it: the migrations Job first, then everything."""
    overlay = write_overlay(workdir, image, chroma)
    built = r.k("kustomize", str(overlay))
    [job] = [d for d in yaml.safe_load_all(built) if d and d["kind"] == "Job"]
    started = time.monotonic()
    r.run(r.kubectl, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(job))
    r.k("-n", NAMESPACE, "wait", "job/coachops-migrate", "--for=condition=complete", "--timeout=5m")
    figures.append(("migrations Job applied -> complete", since(started)))
    started = time.monotonic()
    r.run(r.kubectl, "apply", "--server-side", "-f", "-", stdin=built)
    for deployment in ("coachops-operator", "coachops-runtime", "coachops-worker"):
        r.k("-n", NAMESPACE, "rollout", "status", f"deployment/{deployment}", "--timeout=10m")
    figures.append(("kubectl apply --server-side -k -> every rollout complete", since(started)))
    service = ("-n", NAMESPACE, "get", "service", "coachops-runtime")
    port = await node.forward(r.k(*service, "-o", "jsonpath={.spec.clusterIP}"), 80)
    async with httpx.AsyncClient(timeout=5) as client:
        ready = await client.get(f"http://127.0.0.1:{port}/readyz")
    figures.append(("/readyz through the Service", f"{ready.status_code} {ready.text}"))
    started = time.monotonic()
    r.k("apply", "-k", str(EXAMPLE / "creator"))
    r.k("wait", "creator/acme-coaching", "--for=condition=Ready", "--timeout=180s")
    figures.append(("Creator applied -> Ready", since(started)))
    r.k("apply", "-k", str(EXAMPLE / "programs"))
    programs = r.k("-n", "coachops-acme-coaching", "get", "coachingprograms", "-o", "name")
    figures.append(("programs", ", ".join(programs.split())))


async def main(args: argparse.Namespace) -> None:
    figures: list[tuple[str, str]] = []
    stack = await start_stack()
    assert stack.cluster is not None
    ports = {"postgres": stack.postgres.port, "redis": stack.redis.port}
    node_stack = await start_node_stack(
        stack.workdir / "node-stack",
        stack.cluster.kubeconfig,
        stack.cluster.api_port,
        {**ports, "chroma": stack.chroma.port},
    )
    try:
        r = Runner(stack.cluster.kubeconfig)
        keys = stack.workdir / "jwt"
        generate_key_file(keys, "2026-01-01")
        r.k("create", "namespace", NAMESPACE)
        r.k("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
        secret = ("-n", NAMESPACE, "create", "secret", "generic")
        r.k(
            *secret,
            "coachops-database",
            f"--from-literal=owner-url={at_node(stack.postgres.owner_dsn)}",
            f"--from-literal=runtime-url={at_node(stack.postgres.runtime_dsn)}",
        )
        redis = at_node(stack.redis.url)
        r.k(
            *secret,
            "coachops-redis",
            f"--from-literal=admin-url={redis}",
            f"--from-literal=runtime-url={redis}",
        )
        r.k(*secret, "coachops-jwt", f"--from-file={keys}")
        registry, _, rest = node_stack.image.partition("/")
        repository, _, tag = rest.rpartition(":")
        image = (registry, repository, tag)
        chroma = f"http://{NODE_IP}:{stack.chroma.port}"
        if args.kustomize:
            await kustomize_flow(r, node_stack.node, image, chroma, stack.workdir, figures)
        else:
            await helm_flow(r, node_stack.node, image, chroma, args, figures)
    finally:
        node_stack.stop()
        stack.stop()
    width = max(len(name) for name, _ in figures)
    for name, value in figures:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-migrations", action="store_true")
    parser.add_argument("--rps", type=int, default=20)
    parser.add_argument(
        "--kustomize", action="store_true", help="install manifests/ under a kustomize overlay"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
