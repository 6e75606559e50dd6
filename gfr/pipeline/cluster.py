"""Ray for gfr: the cluster named by RAY_ADDRESS, else a local Ray started inside this process on 127.0.0.1 only.

Ray is an optional extra (`pip install -e '.[ray]'`); nothing here imports it until it is asked for.
Tasks run with this process's environment for the variables that change what gfr computes or where it
reads and writes (KERAS_BACKEND, GFR_*), so every worker, on any node, uses the same backend and folders.
A cluster's nodes must see the project, the data and the feature cache at the same paths (a shared
filesystem), with the same Python environment.
"""

from __future__ import annotations

import os
import sys
import time

from gfr.errors import GfrError

ADDRESS_ENV = "RAY_ADDRESS"
# Ray picks a "remotely reachable" address for a node by default; for a Ray started here with no cluster,
# this keeps every one of its servers on the loopback interface.
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
WORKER_NICENESS_ENV = "RAY_worker_niceness"
# A node's raylet gives its agent processes 15 s to start (ray-project/ray#65983), which a loaded machine can
# exceed: starting a local Ray is tried this many times.
LOCAL_START_ATTEMPTS = 5
FORWARDED_ENV = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH", "GFR_DATA_DIR", "GFR_WEIGHTS_DIR",
                 "GFR_CACHE_DIR", "KERAS_HOME")


def available() -> tuple[bool, str]:
    """(True, "") when Ray can be imported, else (False, how to install it)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False, "Ray is not installed: `.venv/bin/pip install -e '.[ray]'` (the optional `ray` extra)"
    return True, ""


def connect(num_cpus: int | None = None):
    """Connect to $RAY_ADDRESS's cluster, or start a local Ray inside this process; return the `ray` module.

    Does nothing when this process is already connected. `num_cpus` caps a local Ray (default: all cores).
    A local Ray listens on 127.0.0.1 only when Ray is first imported here (not earlier in this process).
    """
    ok, why = available()
    if not ok:
        raise GfrError(why)
    address = os.environ.get(ADDRESS_ENV) or None
    if address is None:
        os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")  # read by Ray when it is first imported
        # Ray runs its workers at nice 15 by default; a local Ray is this command's own work, so it runs them at
        # the command's priority (on a shared machine, niced workers would get a fraction of the serial path's CPU).
        os.environ.setdefault(WORKER_NICENESS_ENV, "0")
        # Token authentication stays with a cluster's own set-up. A local Ray listens on 127.0.0.1 only and lives as
        # long as this command; with tokens on, its start does not finish within the raylet's 15 s window on a loaded
        # machine (measured here). RAY_AUTH_MODE=token in the environment turns them on again.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    if ray.is_initialized():
        return ray
    env_vars = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    options = {"runtime_env": {"env_vars": env_vars}}
    if address is None:
        options.update(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            ray.init(address=address, **options)
            return ray
        except Exception as exc:  # Ray waits a fixed 30 s for its node to start, too little on a loaded machine
            if address is not None or "timed out during startup" not in str(exc) or attempt == LOCAL_START_ATTEMPTS:
                raise
            print(f"local Ray did not start in time (attempt {attempt}); retrying", file=sys.stderr)
            ray.shutdown()
            time.sleep(5)
    return ray


def has_gpus() -> bool:
    """Whether the connected Ray cluster has at least one GPU."""
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def task_resources(gpus: float, cpus: float) -> dict:
    """Ray task options: `gpus` GPU(s) per task where the cluster has GPUs, else `cpus` CPU(s)."""
    return {"num_gpus": gpus, "num_cpus": 1} if has_gpus() else {"num_cpus": cpus}


def describe() -> dict:
    """The connected cluster: nodes alive and total resources (for logs and benchmark records)."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"address": os.environ.get(ADDRESS_ENV) or "local", "nodes": len(nodes),
            "resources": {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}}
