"""A saved run rebuilt for prediction: its manifest checked, its model reassembled (hash-checked), its forward pass."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gfr.errors import GfrError, WeightsUnavailable
from gfr.models import backbones
from gfr.models.head import full_model, load_head
from gfr.study import artefacts

DATA_HINT = "GFR_DATA_DIR=../shared/celeba-5k"
WEIGHTS_HINT = ("put it in $GFR_WEIGHTS_DIR ({now}), e.g. `../shared/tools/imagenet-weights/REPRODUCE.sh "
                "~/.cache/gfr/weights && export GFR_WEIGHTS_DIR=~/.cache/gfr/weights` (README, Setup)")
RUN_NAME = re.compile(r"^[A-Za-z0-9]+-it\d+$")


class Loaded(NamedTuple):
    """A saved run's model, ready to predict."""

    model: object
    backbone: backbones.Backbone
    record: dict


def _rebuild_hint(run_dir: Path) -> str:
    """The make command that rebuilds a registry run's folder (its executed notebook), or ''."""
    name = Path(run_dir).name
    if not RUN_NAME.match(name):
        return ""
    return f"; rebuild it with `make reports/runs/{name}.ipynb {DATA_HINT}`"


def read_record(run_dir: Path) -> dict:
    """A saved run's manifest, if the run finished ('ok'); else one line with the command that rebuilds it."""
    try:
        record = artefacts.load_record(run_dir)
    except GfrError as exc:
        raise GfrError(f"{exc}{_rebuild_hint(run_dir)}") from None
    if record.get("status") != "ok":
        raise GfrError(f"{run_dir}: run status is {record.get('status')!r}, not 'ok' ({record.get('reason', '')})"
                       f"{_rebuild_hint(run_dir)}")
    return record


def load_model(run_dir: str | os.PathLike, weights: str | None = None) -> Loaded:
    """(model, backbone, record) of a saved run; refuses weights whose hash differs from the manifest's.

    Whatever is missing (the run folder, its fine-tuned weights, the backbone's ImageNet weights) is said in
    one line with the command that rebuilds it.
    """
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    backbone = backbones.get(record["backbone"])
    finetuned = artefacts.inside(run_dir, record["finetuned_file"]) if record.get("finetuned_file") else None
    if finetuned is not None and not finetuned.is_file():  # before the ImageNet weights: the larger gap first
        raise GfrError(f"{finetuned}: the fine-tuned weights are not here (ResNet50's: about 60 MB, not committed); "
                       f"rebuild them with `make finetune {DATA_HINT}` (needs the ImageNet weights too)")
    if weights is None and record.get("weights_file") and Path(record["weights_file"]).is_file():
        weights = record["weights_file"]
    spec = weights or ("none" if record["weights_sha256"] == "random" else "imagenet")
    try:
        resolved = backbones.resolve_weights(backbone, spec)
    except WeightsUnavailable as exc:
        if backbone.kind != "keras":  # dlib's descriptor: its file comes with a package; the error names it
            raise GfrError(f"{run_dir}: {exc}") from None
        now = os.environ.get(backbones.WEIGHTS_ENV) or "unset"
        raise GfrError(f"{run_dir} needs {backbone.name}'s ImageNet weights {backbone.weights_file}, not found: "
                       + WEIGHTS_HINT.format(now=now)) from None
    if resolved.sha256 != record["weights_sha256"]:
        raise GfrError(
            f"weights {resolved.path or 'random'} (sha256 {resolved.sha256[:12]}) differ from the run's "
            f"{record['weights_sha256'][:12]} recorded in {run_dir / artefacts.MANIFEST}"
        )
    head = load_head(artefacts.inside(run_dir, record["head_file"]), record["feature_dim"], record["head_units"], record["head_sha256"])
    try:
        if finetuned is not None:
            from gfr.models import finetune

            return Loaded(finetune.load_finetuned(backbone, record, resolved, finetuned), backbone, record)
        extractor = backbones.build_extractor(backbone, tuple(record["input_size"]), record["native_input"], resolved,
                                              record["params"]["seed"])
        return Loaded(full_model(extractor, head), backbone, record)
    except GfrError:
        raise
    except Exception as exc:  # h5py, Keras: a damaged or mismatched file; one line, not a traceback
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise GfrError(f"{run_dir}: cannot rebuild the model ({type(exc).__name__}: {first}){_rebuild_hint(run_dir)}") from None


def padded_size(n: int, batch_size: int) -> int:
    """The batch size a chunk of `n` crops runs at: the next power of two, at most `batch_size`.

    Few distinct shapes reach the model (a new one costs a retrace of its graph, seconds for ResNet50), while
    a stream's last short batch or a --detect-faces batch with any number of faces pads little.
    """
    return min(batch_size, 1 << max(0, n - 1).bit_length())


def forward(loaded: Loaded, crops: list, batch_size: int) -> np.ndarray:
    """P(male) of image crops already at the run's input size, `batch_size` at a time (short batches padded)."""
    out = []
    for start in range(0, len(crops), batch_size):
        batch = np.stack(crops[start:start + batch_size])
        n = len(batch)
        if padded_size(n, batch_size) > n:  # zero images fill the batch; their outputs are dropped
            batch = np.concatenate([batch, np.zeros((padded_size(n, batch_size) - n, *batch.shape[1:]), batch.dtype)])
        p = np.asarray(loaded.model.predict_on_batch(backbones.preprocess(loaded.backbone, batch))).ravel()
        out.append(p[:n])
    return np.concatenate(out) if out else np.empty(0)
