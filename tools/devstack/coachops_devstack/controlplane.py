"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

The binaries come from scripts/build-controlplane.sh (one pinned Kubernetes release). The
apiserver serves TLS from a throwaway CA, authenticates clients by certificate or
ServiceAccount token and authorizes with RBAC, so restricted clients can be tested.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from coachops_devstack.paths import built_bin
from coachops_devstack.pki import CertPair, Pki
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess

KUBERNETES_VERSION = "v1.36.3"


def controlplane_bin(name: str) -> Path:
    """Path of a built control-plane binary (etcd, kube-apiserver, ...)."""
    return built_bin(f"controlplane-{KUBERNETES_VERSION}", name, "scripts/build-controlplane.sh")


def write_kubeconfig(
    path: Path,
    server: str,
    ca: Path,
    *,
    user: str,
    client: CertPair | None = None,
    token: str | None = None,
    namespace: str = "default",
) -> Path:
    """A kubeconfig with one cluster, one user and one current context."""
    credentials: dict[str, str] = {}
    if client is not None:
        credentials = {"client-certificate": str(client.cert), "client-key": str(client.key)}
    if token is not None:
        credentials = {"token": token}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "coachops", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": "coachops", "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager in ``workdir``."""

    workdir: Path
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    kcm_port: int = field(default_factory=free_port)
    processes: list[ManagedProcess] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pki = Pki(self.workdir / "pki")
        self.admin = self.pki.issue("admin", "coachops-admin", organization="system:masters")
        self.kubeconfig = write_kubeconfig(
            self.workdir / "admin.kubeconfig",
            self.server,
            self.pki.ca.cert,
            user="admin",
            client=self.admin,
        )

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return context

    async def start(self) -> None:
        await self._start_etcd()
        await self._start_apiserver()
        await self._start_controller_manager()

    async def _start_etcd(self) -> None:
        client_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{self.etcd_peer_port}"
        etcd = ManagedProcess(
            "etcd",
            [
                str(controlplane_bin("etcd")),
                "--name=coachops",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=coachops={peer_url}",
                "--unsafe-no-fsync",  # throwaway data: durability buys nothing here
                "--log-level=warn",
            ],
            self.workdir / "logs" / "etcd.log",
        )
        self.processes.append(etcd)
        etcd.start()

        async def healthy() -> bool:
            async with httpx.AsyncClient(timeout=1) as client:
                response = await client.get(f"{client_url}/health")
                return bool(response.json().get("health") == "true")

        self.timings["etcd"] = await etcd.wait_ready(healthy, timeout=30)

    async def _start_apiserver(self) -> None:
        serving = self.pki.issue("apiserver", "kube-apiserver", server=True)
        sa = self.pki.service_account_keys()
        apiserver = ManagedProcess(
            "kube-apiserver",
            [
                str(controlplane_bin("kube-apiserver")),
                "--advertise-address=127.0.0.1",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--cert-dir={self.workdir / 'apiserver'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={self.pki.ca.cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                # Benchmarks create a thousand tenants at once; don't throttle the harness.
                "--max-requests-inflight=1000",
                "--max-mutating-requests-inflight=500",
                "--goaway-chance=0",
                "--v=0",
            ],
            self.workdir / "logs" / "kube-apiserver.log",
        )
        self.processes.append(apiserver)
        apiserver.start()
        self.sa_keys = sa

        async def ready() -> bool:
            async with httpx.AsyncClient(verify=self._ssl_context(), timeout=2) as client:
                response = await client.get(f"{self.server}/readyz")
                return response.status_code == 200

        self.timings["kube-apiserver"] = await apiserver.wait_ready(ready, timeout=90)

    async def _start_controller_manager(self) -> None:
        serving = self.pki.issue("kcm", "kube-controller-manager", server=True)
        kcm = ManagedProcess(
            "kube-controller-manager",
            [
                str(controlplane_bin("kube-controller-manager")),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.kcm_port}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--service-account-private-key-file={self.sa_keys.key}",
                f"--root-ca-file={self.pki.ca.cert}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--controllers=*",
                # Garbage collection and namespace deletion must be quick in tests.
                "--concurrent-gc-syncs=20",
                "--concurrent-namespace-syncs=10",
                "--v=0",
            ],
            self.workdir / "logs" / "kube-controller-manager.log",
        )
        self.processes.append(kcm)
        kcm.start()

        async def healthy() -> bool:
            async with httpx.AsyncClient(verify=self._ssl_context(), timeout=2) as client:
                response = await client.get(f"https://127.0.0.1:{self.kcm_port}/healthz")
                return response.status_code == 200

        self.timings["kube-controller-manager"] = await kcm.wait_ready(healthy, timeout=60)

    async def restart_controller_manager(self) -> None:
        """Start kube-controller-manager again. Its quota controller looks for new resource
        types only every 30 s, and a ResourceQuota it synced before it knew one (a CRD
        installed after it started) waits for the next full resync to count that kind;
        one started after the CRDs counts them from the start."""
        old = next(p for p in self.processes if p.name == "kube-controller-manager")
        old.stop()
        self.processes.remove(old)
        await self._start_controller_manager()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
