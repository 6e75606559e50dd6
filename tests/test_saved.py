"""study/saved: a saved run rebuilt for prediction (only a finished run, hash-checked) and its batched forward pass."""

import numpy as np
import pytest

from conftest import edit_record
from gfr.data import celeba
from gfr.data.images import decode
from gfr.errors import GfrError
from gfr.study import saved


def test_padded_sizes_are_few():
    assert [saved.padded_size(n, 32) for n in (1, 2, 3, 5, 16, 17, 31, 32)] == [1, 2, 4, 8, 16, 32, 32, 32]
    assert saved.padded_size(5, 6) == 6


def test_forward_pads_short_batches_without_changing_the_outputs(saved_run, synth_root):
    loaded = saved.load_model(saved_run, "none")
    assert loaded.backbone.name == "VGG16" and loaded.record["run"] == saved_run.name
    size = tuple(loaded.record["input_size"])
    crops = [decode(p, size) for p in sorted((synth_root / celeba.IMAGES_DIR).glob("*.jpg"))[:11]]
    whole = saved.forward(loaded, crops, 16)  # one batch of 11, padded to 16
    in_fours = saved.forward(loaded, crops, 4)  # 4 + 4 + 3 (padded to 4)
    assert whole.shape == (11,) and ((0 <= whole) & (whole <= 1)).all()
    np.testing.assert_allclose(whole, in_fours, atol=1e-6, rtol=0)
    assert saved.forward(loaded, [], 4).shape == (0,)


def test_only_a_finished_run_is_rebuilt_and_the_message_says_how_to_rebuild_it(run_copy):
    edit_record(run_copy, status="failed", reason="boom")
    with pytest.raises(GfrError, match=r"run status is 'failed', not 'ok' \(boom\)"):
        saved.read_record(run_copy)
    with pytest.raises(GfrError, match=r"rebuild it with `make reports/runs/VGG16-it1.ipynb GFR_DATA_DIR="):
        saved.load_model(run_copy, "none")
