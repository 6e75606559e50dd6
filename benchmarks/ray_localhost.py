"""A Ray cluster of several nodes on this machine, every server on 127.0.0.1 only (for tests and benchmarks).

`ray start --head` starts the head node, then each further node joins it with `ray start --address`, as on a
real cluster. Two Ray defaults are changed so that nothing listens on another interface than the loopback:
the head and every client run with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (Ray then takes 127.0.0.1 as the node
address), and a joining node, which Ray would otherwise give this machine's "reachable" address, is started
through a launcher that keeps 127.0.0.1. Workers run at the priority of the command that started the node
(RAY_worker_niceness=0, not Ray's default nice 15), as the serial path they are compared with does, and Ray's
token authentication is off (loopback only; with it on, nodes did not start within Ray's 15 s agent window
on this loaded machine). Every node keeps its sockets, logs and "current cluster" file in the cluster's own
temporary folder (`--temp-dir`), not in /tmp/ray, so a plain `ray.init()` elsewhere on this machine does not
join this cluster. `stop()` ends this cluster's processes only, by pid (the processes naming its folder or
its port, and their children), never with `ray stop`, which would end every Ray of this user.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
# `ray start` for a joining node, with Ray's "reachable address" lookup kept on the loopback
JOIN_LAUNCHER = ("import sys, ray._private.services as s; s.get_node_ip_address = lambda address=None: '127.0.0.1'; "
                 "from ray.scripts.scripts import main; sys.argv = ['ray'] + sys.argv[1:]; main()")


class LocalCluster:
    """`nodes` Ray nodes of `cpus_per_node` CPUs each on 127.0.0.1, the head's GCS on `port`."""

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, port: int = 6390):
        self.nodes, self.cpus_per_node, self.port = nodes, cpus_per_node, port
        self.address = f"127.0.0.1:{port}"
        self.temp_dir = Path(tempfile.gettempdir()) / f"gfr-ray-{port}"

    def env(self) -> dict:
        """The environment of a client (driver) of this cluster, e.g. `gfr sweep --engine ray`."""
        return {**os.environ, "RAY_ADDRESS": self.address, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                "RAY_worker_niceness": "0", "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO),
                "RAY_USAGE_STATS_ENABLED": "0",
                # a node waits this long for its raylet to register (Ray's default, 10 s, is too short on a loaded machine)
                "RAY_raylet_start_wait_time_s": "120"}

    def _ray(self, args: list[str], env: dict, join: bool = False) -> None:
        command = [sys.executable, "-c", JOIN_LAUNCHER, *args] if join else [*RAY, *args]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, cwd=REPO)
        if proc.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    def start(self, attempts: int = 5) -> "LocalCluster":
        """Start the head, then the other nodes; wait until all are alive. A raylet gives its agent processes 15 s
        to start (ray-project/ray#65983), which a loaded machine can exceed: a failed start is stopped and tried
        again, `attempts` times in all."""
        common = ["--num-cpus", str(self.cpus_per_node), "--num-gpus", "0", "--disable-usage-stats",
                  f"--temp-dir={self.temp_dir}"]
        head_env = self.env()
        head_env.pop("RAY_ADDRESS")
        join_env = {**head_env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}  # `ray start --address` refuses 0
        for attempt in range(1, attempts + 1):
            try:
                # the head's fixed-port servers (Ray client, dashboard API) get ports of their own per cluster
                self._ray(["start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                           f"--ray-client-server-port={self.port + 1}", f"--dashboard-port={self.port + 2}",
                           "--include-dashboard=false", *common], head_env)
                for node in range(1, self.nodes):
                    self._ray(["start", f"--address={self.address}", "--node-ip-address=127.0.0.1", *common], join_env,
                              join=True)
                self.wait_for_nodes()
                return self
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                self.stop()
                if attempt == attempts:
                    raise
                print(f"Ray cluster start failed (attempt {attempt}): {str(exc).splitlines()[0]}; retrying", flush=True)
                time.sleep(5)
        return self

    def alive_nodes(self) -> int:
        """How many nodes the cluster has alive (asked in a fresh client process)."""
        code = "import ray; ray.init(); print(sum(1 for n in ray.nodes() if n['Alive'])); ray.shutdown()"
        proc = subprocess.run([sys.executable, "-c", code], env=self.env(), capture_output=True, text=True, timeout=120)
        lines = proc.stdout.strip().splitlines()
        return int(lines[-1]) if proc.returncode == 0 and lines and lines[-1].isdigit() else 0

    def wait_for_nodes(self, timeout_s: float = 120) -> None:
        deadline = time.time() + timeout_s
        while self.alive_nodes() < self.nodes:
            if time.time() > deadline:
                raise RuntimeError(f"the Ray cluster at {self.address} did not reach {self.nodes} nodes")
            time.sleep(2)

    def pids(self) -> list[int]:
        """This cluster's processes: those naming its temporary folder or its port, and all their descendants."""
        marks = (str(self.temp_dir), f"127.0.0.1:{self.port}", f"--gcs_server_port={self.port}")
        table = _processes()
        own = {pid for pid, (_, cmdline) in table.items() if any(m in cmdline for m in marks)} - {os.getpid()}
        while True:
            children = {pid for pid, (ppid, _) in table.items() if ppid in own} - own - {os.getpid()}
            if not children:
                return sorted(own)
            own |= children

    def stop(self, timeout_s: float = 30) -> None:
        """Kill this cluster's processes (SIGKILL, by pid), wait until they are gone, delete its temporary folder."""
        deadline = time.time() + timeout_s
        while (pids := self.pids()) and time.time() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _processes() -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, command line)} of every process now running (from /proc)."""
    table = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        table[int(proc.name)] = (ppid, cmdline)
    return table


def worker_pids(task_name: str) -> list[int]:
    """Process ids of Ray workers now running a task of function `task_name` (their title is ray::<name>)."""
    return sorted(pid for pid, (_, cmdline) in _processes().items() if cmdline.startswith(f"ray::{task_name}"))
