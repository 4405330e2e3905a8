"""A real node for the local stack: containerd 2.x, runc, CNI bridge and kubelet (and
kube-proxy), inside a network namespace of the harness's own.

Network (nothing leaves the machine): ``ip netns add`` makes the node's namespace; it holds
the node's address on its loopback interface (``NODE_IP``), the CNI bridge and every pod's
veth. Pods get routes to the node and pod ranges and the Service range only, no default
route, no masquerade, and the namespace forwards nothing out (it has no other interface).
The node reaches the apiserver, the registry and the stores through ``relay`` processes
that join loopback ports of the host to the same port numbers in the node's namespace over
Unix sockets: the apiserver and registry on the namespace's loopback (so kubeconfigs and
image names are the host's), the stores on ``NODE_IP`` (where pods reach them).

cgroups: this machine runs cgroup v1 (hybrid). Kubernetes 1.35+ refuses v1 unless the
kubelet configuration says ``failCgroupV1: false``, which this node does; the cgroupfs
driver is used (no systemd here) and every pod lives under a cgroup root of this node's own
(``/coachops-<id>``), so concurrent stacks do not share ``kubepods``.

Images: pulled from the stack's registry over plain HTTP (a ``hosts.toml`` for its
loopback address); the pod sandbox image is a pause binary built here (tools/imagebuilder/
pause), pushed to the same registry, so nothing is pulled from the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from coachops_devstack.paths import built_bin, go_module_version
from coachops_devstack.ports import free_port
from coachops_devstack.process import ComponentError, ManagedProcess

NODE_IP = "10.213.0.1"
POD_CIDR = "10.213.1.0/24"
SERVICE_CIDR = "10.0.0.0/24"  # the control plane's --service-cluster-ip-range
NODE_NAME = "coachops-node"
CGROUP_CONTROLLERS = (
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "pids",
    "blkio",
    "systemd",
)


def node_bin(name: str) -> Path:
    """kubelet, kube-proxy (scripts/build-node.sh), containerd, its shim, ctr."""
    if name in ("kubelet", "kube-proxy", "kube-scheduler"):
        version = go_module_version("node/kubelet", "k8s.io/kubernetes")
        directory = f"node-{version}"
    elif name in ("imagebuilder", "pause"):
        directory = "imagebuilder-current"
    else:
        version = go_module_version("node/containerd", "github.com/containerd/containerd/v2")
        directory = f"containerd-{version}"
    return built_bin(directory, name, "scripts/build-node.sh and build-image.sh")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=120)


def node_supported() -> str | None:
    """Why a node cannot run here (None when it can): root and the Debian tools; the Go
    binaries and the image are built by ``start_node_stack``."""
    if os.geteuid() != 0:
        return "the node needs root (network namespaces, cgroups, mounts)"
    tools = ["ip", "nsenter", "runc", "iptables", "go"]
    if not os.environ.get("COACHOPS_NODE_IMAGE_DIR"):
        tools.append("mmdebstrap")
    for tool in tools:
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install iproute2 runc iptables mmdebstrap)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "CNI plugins are missing (apt-get install containernetworking-plugins)"
    return None


@dataclass
class Node:
    """One node in its own network namespace; ``stores`` maps a name to a host loopback
    port that pods reach at ``NODE_IP`` on the same port."""

    workdir: Path
    kubeconfig: Path
    api_port: int
    registry_port: int
    stores: dict[str, int]
    kube_proxy: bool = True
    netns: str = field(default_factory=lambda: f"coachops-{uuid.uuid4().hex[:8]}")
    processes: list[ManagedProcess] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    _forwards: int = 0

    @property
    def sockets(self) -> Path:
        # Unix socket paths are limited to 107 bytes: keep them short.
        return Path("/run/coachops") / self.netns

    @property
    def cgroup_root(self) -> str:
        return f"/{self.netns}"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def pause_image(self) -> str:
        return f"{self.registry}/coachops/pause:1"

    def _in_netns(self, *argv: str) -> list[str]:
        # nsenter, not `ip netns exec`: that one mounts a fresh /sys, which hides
        # /sys/fs/cgroup from the kubelet and runc.
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv]

    def _process(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.workdir / "logs" / f"{name}.log", env=env)
        self.processes.append(process)
        process.start()
        return process

    # ------------------------------------------------------------------ start

    async def start(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self._network)
        await self._relays()
        await self._containerd()
        await self._push_pause()
        await asyncio.gather(self._kubelet(), self._scheduler())
        if self.kube_proxy:
            await asyncio.to_thread(self._kubernetes_endpoint)
            await self._kube_proxy()
        self.timings["node total"] = time.monotonic() - started

    def _network(self) -> None:
        _run("ip", "netns", "add", self.netns)
        _run("ip", "-n", self.netns, "link", "set", "lo", "up")
        # On the namespace's loopback (this kernel has no dummy interfaces): local to the
        # namespace, reached by pods through the bridge's gateway.
        _run("ip", "-n", self.netns, "addr", "add", f"{NODE_IP}/32", "dev", "lo")
        # A local connection to a ClusterIP needs a route before kube-proxy's DNAT picks the
        # pod (then the kernel routes again, through the bridge); without one, connect()
        # fails with "network unreachable". The namespace has no default route to use.
        _run("ip", "-n", self.netns, "route", "add", SERVICE_CIDR, "dev", "lo")
        self.sockets.mkdir(parents=True, exist_ok=True)
        for controller in CGROUP_CONTROLLERS:
            base = Path("/sys/fs/cgroup") / controller
            if base.is_dir():
                (base / self.netns).mkdir(exist_ok=True)

    async def _relays(self) -> None:
        host_pairs = [
            f"unix:{self.sockets}/api.sock=tcp:127.0.0.1:{self.api_port}",
            f"unix:{self.sockets}/registry.sock=tcp:127.0.0.1:{self.registry_port}",
        ]
        node_pairs = [
            f"tcp:127.0.0.1:{self.api_port}=unix:{self.sockets}/api.sock",
            f"tcp:127.0.0.1:{self.registry_port}=unix:{self.sockets}/registry.sock",
            # Pods reach the apiserver at the node's address (the `kubernetes` Service's
            # endpoint, _kubernetes_endpoint): a pod's loopback is its own.
            f"tcp:{NODE_IP}:{self.api_port}=unix:{self.sockets}/api.sock",
        ]
        for name, port in self.stores.items():
            host_pairs.append(f"unix:{self.sockets}/{name}.sock=tcp:127.0.0.1:{port}")
            node_pairs.append(f"tcp:{NODE_IP}:{port}=unix:{self.sockets}/{name}.sock")
        await self._relay_pair("relay", host_pairs, node_pairs)

    async def _relay_pair(self, name: str, host_pairs: list[str], node_pairs: list[str]) -> None:
        relay = [sys.executable, "-m", "coachops_devstack.relay"]
        for side, argv in (
            (f"{name}-host", [*relay, *host_pairs]),
            (f"{name}-node", self._in_netns(*relay, *node_pairs)),
        ):
            process = self._process(side, argv)

            async def ready(process: ManagedProcess = process) -> bool:
                return "relay ready" in process.log_tail(5)

            await process.wait_ready(ready, timeout=30)

    async def expose(self, name: str, port: int) -> str:
        """Make host loopback ``port`` reachable from pods at ``NODE_IP`` on the same port
        (a store started after the node, such as Ollama); returns ``host:port`` for pods."""
        sock = f"{self.sockets}/{name}.sock"
        await self._relay_pair(
            f"relay-{name}",
            [f"unix:{sock}=tcp:127.0.0.1:{port}"],
            [f"tcp:{NODE_IP}:{port}=unix:{sock}"],
        )
        self.stores[name] = port
        return f"{NODE_IP}:{port}"

    def _containerd_config(self) -> Path:
        root = self.workdir / "containerd"
        certs = root / "certs.d" / self.registry
        certs.mkdir(parents=True, exist_ok=True)
        (certs / "hosts.toml").write_text(
            f'server = "http://{self.registry}"\n\n'
            f'[host."http://{self.registry}"]\n'
            '  capabilities = ["pull", "resolve"]\n'
        )
        cni = self.workdir / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        (cni / "net.d" / "10-coachops.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "coachops",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": "cni0",
                            "isGateway": True,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "dataDir": str(cni / "ipam"),
                                "ranges": [[{"subnet": POD_CIDR}]],
                                # No default route: pods reach the node, pods and Services.
                                "routes": [{"dst": f"{NODE_IP}/32"}, {"dst": SERVICE_CIDR}],
                            },
                        }
                    ],
                },
                indent=2,
            )
        )
        config = root / "config.toml"
        config.write_text(
            f"""version = 3
root = "{root / "root"}"
state = "{self.sockets / "state"}"

[grpc]
  address = "{self.sockets / "containerd.sock"}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{self.pause_image}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{root / "certs.d"}"

[plugins.'io.containerd.cri.v1.runtime']
  # This machine grants no CAP_SYS_RESOURCE, so no process may lower its OOM score below
  # its parent's: the kubelet's -998 for pod sandboxes would make runc fail ("failed to
  # update /proc/self/oom_score_adj: Permission denied"). Clamp to containerd's own.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{os.environ.get("COACHOPS_NODE_RUNC") or shutil.which("runc")}"
        SystemdCgroup = false
        Root = "{self.sockets / "runc"}"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{cni / "net.d"}"
"""
        )
        return config

    async def _containerd(self) -> None:
        config = self._containerd_config()
        binary = node_bin("containerd")
        env = {"PATH": f"{binary.parent}:{os.environ.get('PATH', '')}"}
        process = self._process(
            "containerd", self._in_netns(str(binary), "--config", str(config)), env
        )
        ctr = [str(node_bin("ctr")), "--address", str(self.sockets / "containerd.sock")]

        async def ready() -> bool:
            done = await asyncio.to_thread(_run, *ctr, "version", check=False)
            return done.returncode == 0

        self.timings["containerd"] = await process.wait_ready(ready, timeout=60, interval=0.3)

    async def _push_pause(self) -> None:
        rootfs = self.workdir / "pause-rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        shutil.copy2(node_bin("pause"), rootfs / "pause")
        layout = self.workdir / "pause-oci"
        builder = str(node_bin("imagebuilder"))
        await asyncio.to_thread(
            _run,
            builder,
            "build",
            "-rootfs",
            str(rootfs),
            "-layout",
            str(layout),
            "-user",
            "65535:65535",
            "-entrypoint",
            '["/pause"]',
        )
        await asyncio.to_thread(
            _run, builder, "push", "-layout", str(layout), "-ref", self.pause_image, "-insecure"
        )

    def _kubelet_config(self) -> Path:
        resolv = self.workdir / "kubelet-resolv.conf"
        resolv.write_text("")  # pods get no resolver: nothing to resolve off this machine
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "containerRuntimeEndpoint": f"unix://{self.sockets / 'containerd.sock'}",
            "address": NODE_IP,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "failSwapOn": False,
            "resolvConf": str(resolv),
            "podLogsDir": str(self.workdir / "pod-logs"),
            "serializeImagePulls": False,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "maxPods": 50,
            "podPidsLimit": 4096,
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "5s",
            "fileCheckFrequency": "5s",
            "enforceNodeAllocatable": ["pods"],
            "localStorageCapacityIsolation": True,
        }
        path = self.workdir / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    async def _kubelet(self) -> None:
        config = self._kubelet_config()
        self._healthz = yaml.safe_load(config.read_text())["healthzPort"]
        process = self._process(
            "kubelet",
            self._in_netns(
                str(node_bin("kubelet")),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--root-dir={self.workdir / 'kubelet'}",
                "--v=1",
            ),
        )

        async def node_ready() -> bool:
            done = await asyncio.to_thread(
                _run,
                str(_kubectl()),
                f"--kubeconfig={self.kubeconfig}",
                "get",
                "node",
                NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )
            return done.stdout.strip() == "True"

        self.timings["kubelet (node Ready)"] = await process.wait_ready(
            node_ready, timeout=120, interval=0.5
        )

    async def _scheduler(self) -> None:
        """The control plane runs no scheduler (nothing to schedule without a node)."""
        port = free_port()
        process = self._process(
            "kube-scheduler",
            [
                str(node_bin("kube-scheduler")),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                "--leader-elect=false",
                "--v=0",
            ],
        )

        async def healthy() -> bool:
            async with httpx.AsyncClient(verify=False, timeout=1) as client:  # noqa: S501
                return (await client.get(f"https://127.0.0.1:{port}/healthz")).status_code == 200

        self.timings["kube-scheduler"] = await process.wait_ready(healthy, timeout=60)

    async def _kube_proxy(self) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(self.kubeconfig)},
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": POD_CIDR,
            "bindAddress": NODE_IP,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "conntrack": {"maxPerCore": 0},  # leave the machine's conntrack sysctls alone
            "nodePortAddresses": [f"{NODE_IP}/32"],
        }
        path = self.workdir / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        process = self._process(
            "kube-proxy", self._in_netns(str(node_bin("kube-proxy")), f"--config={path}", "--v=1")
        )

        async def ready() -> bool:
            return "Starting" in process.log_tail(400) or "Sync" in process.log_tail(400)

        self.timings["kube-proxy"] = await process.wait_ready(ready, timeout=60, interval=0.5)

    def _kubernetes_endpoint(self) -> None:
        """The `kubernetes` Service (10.0.0.1:443, what pods' in-cluster clients use) has
        no endpoint: the apiserver advertises 127.0.0.1, and writes none for a loopback
        address. This EndpointSlice names the node's address, where a relay leads to the
        apiserver; its serving certificate names 10.0.0.1, so clients verify it as usual.
        Managed by neither the EndpointSlice controller nor the mirroring one (the
        Service has no selector and the label names this harness)."""
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes-coachops-node",
                "namespace": "default",
                "labels": {
                    "kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "coachops-devstack",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": self.api_port, "protocol": "TCP"}],
        }
        subprocess.run(
            [str(_kubectl()), f"--kubeconfig={self.kubeconfig}", "apply", "-f", "-"],
            input=json.dumps(slice_),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )

    # ------------------------------------------------------------------ reaching pods

    async def forward(self, host: str, port: int) -> int:
        """A host loopback port that reaches ``host:port`` inside the node's namespace (a
        Service's ClusterIP or a pod's IP)."""
        self._forwards += 1
        sock = f"{self.sockets}/fwd{self._forwards}.sock"
        local = free_port()
        await self._relay_pair(
            f"forward{self._forwards}",
            [f"tcp:127.0.0.1:{local}=unix:{sock}"],
            [f"unix:{sock}=tcp:{host}:{port}"],
        )
        return local

    def memory(self) -> dict[str, int]:
        """Resident memory (bytes) of the kubelet and containerd."""
        found = {}
        for process in self.processes:
            if process.name in ("kubelet", "containerd") and process.running():
                pid = _child_named(process.pid, process.name) or process.pid
                status = Path(f"/proc/{pid}/status").read_text()
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        found[process.name] = int(line.split()[1]) * 1024
        return found

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Stop every process, the pods' processes and shims, unmount, remove the namespace."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        self._kill_leftovers()
        self._unmount()
        _run("ip", "netns", "del", self.netns, check=False)
        for controller in (*CGROUP_CONTROLLERS, "unified"):
            _remove_cgroup(Path("/sys/fs/cgroup") / controller / self.netns)
        shutil.rmtree(self.sockets, ignore_errors=True)

    def _kill_leftovers(self) -> None:
        """containerd's shims outlive containerd (they daemonize), and so do containers."""
        pids: set[int] = set()
        memory = Path("/sys/fs/cgroup/memory") / self.netns
        if memory.is_dir():
            for procs in memory.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(p) for p in procs.read_text().split())
        marker = str(self.sockets).encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if marker in (entry / "cmdline").read_bytes():
                        pids.add(int(entry.name))
        # The pods' network namespaces (containerd bind-mounts them under /run/netns):
        # found by the namespace inode of their processes, removed once those are gone.
        namespaces: set[int] = set()
        for pid in pids:
            with contextlib.suppress(OSError):
                namespaces.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        netns_dir = Path("/run/netns")
        for entry in netns_dir.glob("cni-*") if netns_dir.is_dir() else ():
            with contextlib.suppress(OSError):
                if entry.stat().st_ino in namespaces:
                    _run("ip", "netns", "del", entry.name, check=False)

    def _unmount(self) -> None:
        roots = (str(self.workdir), str(self.sockets))
        mounts = [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(roots)
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            _run("umount", "-l", mount, check=False)


def _remove_cgroup(path: Path) -> None:
    if not path.is_dir():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            child.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def _child_named(pid: int, name: str) -> int | None:
    """``ip netns exec`` execs the command, so the pid is already the program's; kept for
    wrappers that fork."""
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/comm").read_text().strip() == name[:15]:
            return pid
    return None


def _kubectl() -> Path:
    from coachops_devstack.controlplane import controlplane_bin

    return controlplane_bin("kubectl")


# ------------------------------------------------------------------ node + image + registry


@dataclass
class NodeStack:
    """A node with its own registry holding the built coachops image."""

    node: Node
    registry: ManagedProcess
    image: str
    timings: dict[str, float]

    def stop(self) -> None:
        self.node.stop()
        self.registry.stop()


def _build(script: str) -> None:
    from coachops_devstack.paths import REPO_ROOT

    done = subprocess.run(
        ["bash", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        log = Path(tempfile.mkstemp(prefix="coachops-build-", suffix=".log")[1])
        log.write_text(done.stdout + "\n" + done.stderr)
        raise ComponentError(f"{script} failed (whole output in {log}):\n{done.stderr[-2000:]}")


async def start_node_stack(
    workdir: Path, kubeconfig: Path, api_port: int, stores: dict[str, int]
) -> NodeStack:
    """Build (or reuse) the node's binaries and the image, start a registry, push the image,
    start the node. Raises ``ComponentError`` where a node cannot run (``node_supported``)."""
    from coachops_devstack.ollama import registry_bin
    from coachops_devstack.paths import cache_dir

    reason = node_supported()
    if reason is not None:
        raise ComponentError(f"no node: {reason}")
    timings: dict[str, float] = {}
    started = time.monotonic()
    # COACHOPS_NODE_IMAGE_DIR: an image build-image.sh made already (CI builds it once;
    # a tree that others are editing would otherwise rebuild it for every run).
    given = os.environ.get("COACHOPS_NODE_IMAGE_DIR", "")
    builds = [asyncio.to_thread(_build, "scripts/build-node.sh")]
    if not given:
        builds.append(asyncio.to_thread(_build, "scripts/build-image.sh"))
    await asyncio.gather(*builds)
    timings["builds (reused when cached)"] = time.monotonic() - started
    image_dir = Path(given or (cache_dir() / "images" / "latest").read_text().strip())
    registry_port = free_port()
    registry = ManagedProcess(
        "node-registry",
        [
            str(registry_bin()),
            "-addr",
            f"127.0.0.1:{registry_port}",
            "-dir",
            str(workdir / "registry"),
            "-blob-host",
            "",
            "-quiet",
        ],
        workdir / "logs" / "registry.log",
    )
    registry.start()
    node = Node(workdir / "node", kubeconfig, api_port, registry_port, stores)
    try:

        async def registry_ready() -> bool:
            async with httpx.AsyncClient(timeout=2) as client:
                response = await client.get(f"http://127.0.0.1:{registry_port}/v2/")
                return response.status_code == 200

        await registry.wait_ready(registry_ready, timeout=30)
        tag = image_dir.name.rsplit("-", 1)[-1]
        image = f"127.0.0.1:{registry_port}/coachops/coachops:{tag}"
        pushed = time.monotonic()
        await asyncio.to_thread(
            _run,
            str(node_bin("imagebuilder")),
            "push",
            "-layout",
            str(image_dir / "oci"),
            "-ref",
            image,
            "-insecure",
        )
        timings["image push"] = time.monotonic() - pushed
        await node.start()
    except BaseException:
        node.stop()
        registry.stop()
        raise
    timings.update(node.timings)
    return NodeStack(node, registry, image, timings)
