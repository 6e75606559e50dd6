"""study/hardware: what a run records about the machine, and the short label tables show."""

import os

from gfr.study import hardware
from gfr.study.verify import numerics_id


def test_describe_records_what_decides_a_runs_bits():
    info = hardware.describe()
    assert info["cores"] == len(os.sched_getaffinity(0)) and info["keras_backend"] == "tensorflow"
    assert info["cpu"] and isinstance(info["cpu_flags"], list) and isinstance(info["cpu_caches"], dict)
    assert set(info["threads"]) == {"tf_inter_op", "tf_intra_op"} and "tensorflow" in info
    assert all(k in info for k in ("memory_gib", "gpus", "python", "keras", "numerics_env"))
    assert numerics_id(info) == numerics_id(hardware.describe())  # the same machine twice: the same kind


def test_numerics_env_records_only_the_settings_that_change_kernels(monkeypatch):
    for name in hardware.NUMERICS_ENV:
        monkeypatch.delenv(name, raising=False)
    assert hardware.describe()["numerics_env"] == {}
    name = hardware.NUMERICS_ENV[0]
    monkeypatch.setenv(name, "1")
    monkeypatch.setenv("GFR_SOMETHING_ELSE", "1")
    assert hardware.describe()["numerics_env"] == {name: "1"}


def test_hardware_id_names_cpu_cores_gpu_and_backend():
    info = {"cpu": "Test CPU", "cores": 4, "gpus": [], "keras_backend": "jax"}
    assert hardware.hardware_id(info) == "Test CPU (4 cores), jax"
    gpu = {**info, "gpus": ["NVIDIA H100 80GB HBM3, 81559 MiB"]}
    assert hardware.hardware_id(gpu) == "Test CPU (4 cores) + NVIDIA H100 80GB HBM3, jax"
    assert hardware.hardware_id() == hardware.hardware_id(hardware.describe())
