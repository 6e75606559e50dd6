"""Describe the machine a measurement ran on (detected, never typed)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# CPU features that change which kernels (and so which floating-point summation orders) oneDNN / Eigen run
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
# settings read when the backend loads that change the numbers (see benchmarks/bench_numerics.py)
NUMERICS_ENV = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                "OMP_NUM_THREADS", "TF_DETERMINISTIC_OPS", "XLA_FLAGS")


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [f for f in SIMD_FLAGS if f in present]
    except OSError:
        pass
    return []


def _cache_sizes() -> dict[str, str]:
    """CPU cache sizes (L1d, L2, L3) from sysfs: kernels block their loops by them."""
    out = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
            if kind != "Instruction":
                out[f"L{level}{'d' if kind == 'Data' else ''}"] = (index / "size").read_text().strip()
        except OSError:
            continue
    return out


def _threads(backend: str) -> dict:
    """Thread settings the backend runs with (0 = its default: one per core)."""
    info = {}
    if backend == "tensorflow":
        import tensorflow as tf

        info = {"tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    return info


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def environment() -> dict:
    """The installed packages against the committed locks (requirements/*.txt): `environment_lock` (the locks
    they match exactly, or "none"), `environment_lock_sha256`, `environment_packages_sha256` (of the sorted
    name==version list) and, where no lock matches, `environment_differences`."""
    from gfr import environment as env

    info = env.describe()
    out = {"environment_lock": info["lock"], "environment_lock_sha256": info["lock_sha256"],
           "environment_packages_sha256": info["packages_sha256"]}
    if info.get("lock_differences"):
        out["environment_differences"] = info["lock_differences"]
    return out


def describe() -> dict:
    """CPU, cores, memory, GPUs, Python and Keras/backend versions of this machine, and the installed
    environment against the committed locks."""
    import keras

    info = {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "cpu_flags": _cpu_flags(),
        "cpu_caches": _cache_sizes(),
        "numerics_env": {k: os.environ[k] for k in NUMERICS_ENV if k in os.environ},
    }
    info["threads"] = _threads(info["keras_backend"])
    backend = info["keras_backend"]
    if backend == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    elif backend == "jax":
        import jax

        info["jax"] = jax.__version__
        info["jax_devices"] = [str(d) for d in jax.devices()]
    elif backend == "torch":
        import torch

        info["torch"] = torch.__version__
    info.update(environment())
    return info


def hardware_id(info: dict | None = None) -> str:
    """A short label for tables: CPU (cores) [+ GPU], backend."""
    info = info or describe()
    label = f"{info['cpu']} ({info['cores']} cores)"
    if info.get("gpus"):
        label += " + " + info["gpus"][0].split(",")[0]
    return f"{label}, {info['keras_backend']}"
