"""Photo-like augmentation: reproducible per (seed, copy, row), cached as its own feature entry, and trained on."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from gfr.data import augment, faces
from gfr.errors import GfrError
from gfr.models import backbones, feature_cache
from gfr.params import load_params
from gfr.study import analysis, artefacts, ensemble, run

from conftest import small_params, squeezed

STILL = dict(copies=1, mirror=0.0, rotation_deg=0.0, scale=0.0, shift=0.0, brightness=0.0, contrast=0.0,
             saturation=0.0, grayscale=0.0)


def photo(seed=0, size=faces.CELEBA_SIZE):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def test_iteration_5_is_iteration_3_plus_augmentation():
    a, b = load_params(3), load_params(5)
    assert b.augment is not None and b.augment.copies >= 1 and a.augment is None
    assert (a.image_size, a.epochs, a.head) == (b.image_size, b.epochs, b.head)
    assert "augmented copies" in b.description
    assert "augment" not in a.as_dict()  # records of the other iterations are unchanged
    assert analysis.builds_on(5) == 3 and analysis.builds_on(4) == 3 and analysis.builds_on(2) == 1
    assert analysis.builds_on(1) is None
    assert analysis.lever(3, 5) == f"{b.augment.copies} photo-like augmented copies of each training image"
    assert analysis.lever(5, 6) == "augmentation tight_crop 0 -> 0.3"


@pytest.mark.parametrize("change, message", [
    ({"augment": {"copies": 0}}, "augment.copies"),
    ({"augment": {"grayscale": 1.5}}, "augment.grayscale"),
    ({"augment": {"rotation_deg": 90}}, "augment.rotation_deg"),
    ({"augment": {"colour": 0.1}}, "unknown key 'augment.colour'"),
    ({"finetune": {"boundary": None, "learning_rate": 1e-4, "epochs": 1, "batch_size": 8, "augment": True}},
     "applies to head-only iterations"),
])
def test_bad_augmentation_parameters_name_the_key(change, message):
    with pytest.raises(GfrError, match=message.replace("(", r"\(")):
        load_params(5, change)


def test_draws_depend_only_on_seed_copy_and_row():
    p = load_params(5).augment
    assert augment.draw(p, 1, 1, 7) == augment.draw(p, 1, 1, 7)
    assert augment.draw(p, 1, 1, 7) != augment.draw(p, 1, 2, 7) != augment.draw(p, 2, 1, 7)
    draws = [augment.draw(p, 0, 1, row) for row in range(400)]
    assert max(abs(np.rad2deg(d["angle"])) for d in draws) <= p.rotation_deg
    assert 0.35 < np.mean([d["mirror"] for d in draws]) < 0.65
    assert 0.1 < np.mean([d["grayscale"] for d in draws]) < 0.3
    # a batch's rows are the same images whatever the batching
    batch = np.stack([photo(k) for k in range(4)])
    whole = augment.augment_batch(batch, 0, p, 3, 1)
    np.testing.assert_array_equal(whole[2:], augment.augment_batch(batch[2:], 2, p, 3, 1))
    assert whole.shape == batch.shape and whole.dtype == np.uint8


def test_no_change_gives_the_image_back_and_each_part_acts():
    p = load_params(5, {"augment": STILL}).augment
    img = photo(1)
    choice = augment.draw(p, 0, 1, 0)
    np.testing.assert_array_equal(augment.augment(img, choice), img)
    np.testing.assert_array_equal(augment.augment(img, {**choice, "mirror": True}), img[:, ::-1])
    gray = augment.augment(img, {**choice, "grayscale": True})
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert augment.augment(img, {**choice, "brightness": 1.2}).mean() > img.mean()
    # a shift moves the content: 10 px right, so column 10 of the result is column 0 of the image (pixel centres)
    h, w = img.shape[:2]
    moved = augment.augment(img, {**choice, "shift": (10 / w, 0.0)})
    np.testing.assert_array_equal(moved[:, 10:], img[:, :-10])


def test_tight_crops_keep_a_box_around_the_face_and_leave_other_draws_alone():
    p5, p6 = load_params(5).augment, load_params(6).augment
    assert p6.tight_crop > 0 and p5.tight_crop == 0 and analysis.builds_on(6) == 5
    for row in range(50):  # iteration 6 draws what iteration 5 draws, then the crop
        d5, d6 = augment.draw(p5, 1, 1, row), augment.draw(p6, 1, 1, row)
        assert d5 == {k: v for k, v in d6.items() if k != "crop"} and "crop" not in d5
    share = np.mean([augment.draw(p6, 0, 1, r)["crop"] is not None for r in range(400)])
    assert abs(share - p6.tight_crop) < 0.1
    img = photo(2)
    x0, y0, x1, y1 = faces.CELEBA_BOX
    out = augment.tight_crop(img, (0.0, 0.0, 0.0, 0.0))
    left, top, right, bottom = round(x0), round(y0), round(x1), round(y1)
    np.testing.assert_array_equal(out[top:bottom, left:right], img[top:bottom, left:right])  # the face box is kept
    np.testing.assert_array_equal(out[:top, left:right], np.repeat(img[top:top + 1, left:right], top, axis=0))
    np.testing.assert_array_equal(out[top:bottom, :left], np.repeat(img[top:bottom, left:left + 1], left, axis=1))
    np.testing.assert_array_equal(augment.tight_crop(img, (9.0, 9.0, 9.0, 9.0)), img)  # a box past the image: all
    assert "tight_crop" not in augment.cache_spec(p5, 1, 1) and augment.cache_spec(p6, 1, 1)["tight_crop"] == p6.tight_crop


def test_cache_spec_names_everything_but_the_number_of_copies():
    p = load_params(5).augment
    spec = augment.cache_spec(p, 1024, 2)
    assert "copies" not in spec and spec["copy"] == 2 and spec["seed"] == 1024 and spec["rotation_deg"] == p.rotation_deg
    assert augment.cache_spec(dataclasses.replace(p, copies=5), 1024, 2) == spec


def test_augmented_features_are_an_entry_of_their_own(synth_root, synth_manifest, tmp_path):
    from gfr.data import celeba, split

    frame = split.read_manifest(synth_manifest)
    ids = list(frame.image_id[frame.split == "train"])
    aug = feature_cache.Augment(load_params(5).augment, 1024, 1)
    common = ("ResNet50", ids, synth_root, (32, 32), False, backbones.RANDOM, "m" * 64, 8, tmp_path)
    plain, info = feature_cache.extract(*common, init_seed=0, progress=False)
    first, info1 = feature_cache.extract(*common, init_seed=0, progress=False, augment=aug)
    again, info2 = feature_cache.extract(*common, init_seed=0, progress=False, augment=aug)
    assert (info1["cache"], info2["cache"]) == ("miss", "hit") and info1["path"] != info["path"]
    assert first.shape == plain.shape and not np.allclose(first, plain)
    np.testing.assert_array_equal(first, again)
    # a shard (rows 4: computed alone, as a Ray worker does) equals the same rows of the whole entry
    extractor, shape = feature_cache.build_entry_extractor(
        feature_cache.EntrySpec("ResNet50", (32, 32), False, backbones.RANDOM, init_seed=0))
    part = np.zeros((len(ids) - 4, *shape), np.float32)
    feature_cache.compute(extractor, backbones.get("ResNet50"), [celeba.image_path(synth_root, i) for i in ids[4:]],
                          (32, 32), 8, part, False, augment=aug, first_row=4)
    np.testing.assert_allclose(part, first[4:], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def augmented_runs(synth_root, synth_manifest, tmp_path_factory):
    """Two augmented head runs (test parameters, random weights) saved on the synthetic set."""
    work = tmp_path_factory.mktemp("augmented")
    for backbone in ("VGG16", "ResNet50"):
        params = small_params(5, {"input_size": [32, 32]})
        assert run.run_one(backbone, 5, synth_root, synth_manifest, work / "runs", params, work / "cache",
                           progress=False)["status"] == "ok"
    return work / "runs"


def test_an_augmented_run_trains_on_every_copy_and_saves_validation_predictions(augmented_runs, synth_manifest):
    from gfr.data import split

    record = artefacts.load_record(augmented_runs / "ResNet50-it5")
    copies = load_params(5).augment.copies
    assert len(record["feature_cache"]["augmented"]) == copies
    assert record["params"]["augment"]["copies"] == copies
    frame = split.read_manifest(synth_manifest)
    val = artefacts.test_predictions(augmented_runs / "ResNet50-it5", "val")
    assert list(val.image_id) == list(frame.image_id[frame.split == "val"])
    seeds = artefacts.seeds_table(augmented_runs / "ResNet50-it5")
    # the saved validation predictions give back each seed's recorded validation accuracy
    for seed, acc in zip(seeds.seed, seeds.val_accuracy):
        right = (val[artefacts.prob_column(seed)] >= 0.5).astype(int) == val.label
        assert right.mean() == pytest.approx(acc, abs=1e-6)


def test_ensemble_averages_members_seed_by_seed(augmented_runs):
    members = ["VGG16-it5", "ResNet50-it5"]
    seeds = ensemble.seed_accuracies(augmented_runs, members)
    name = ensemble.name(members)
    assert list(seeds.model.unique()) == [*members, name]
    val = {m: artefacts.test_predictions(augmented_runs / m, "val") for m in members}
    col = artefacts.prob_column(1025)
    mean = (val[members[0]][col] + val[members[1]][col]) / 2
    expected = ((mean >= 0.5).astype(int) == val[members[0]].label).mean()
    got = seeds[(seeds.model == name) & (seeds.seed == 1025)].val_accuracy.item()
    assert got == pytest.approx(expected)
    judged = ensemble.verdict(seeds)
    assert judged["ensemble"] == name and judged["best_member"] in members and isinstance(judged["wins"], bool)
    assert set(ensemble.summary(seeds).index) == {*members, name}
    with pytest.raises(GfrError, match="at least two runs"):
        ensemble.seed_accuracies(augmented_runs, members[:1])


def test_ensemble_needs_validation_predictions(saved_run):
    with pytest.raises(GfrError, match="no saved val predictions"):
        ensemble.seed_accuracies(saved_run.parent, ["VGG16-it1", "Missing-it1"])


def test_ensemble_in_the_wild_averages_members():
    frame = pd.DataFrame({"file": ["b.jpg", "a.jpg"], "source": "x", "male": [1, 0], "p_male": [0.9, 0.2],
                          "detector": "hog"})
    other = frame.assign(p_male=[0.3, 0.6]).iloc[::-1]
    out = ensemble.wild_predictions({"A": frame, "B": other}, ["A", "B"])
    assert list(out.file) == ["a.jpg", "b.jpg"] and out.p_male.tolist() == pytest.approx([0.4, 0.6])
    with pytest.raises(GfrError, match="gfr wild --runs C"):
        ensemble.wild_predictions({"A": frame}, ["A", "C"])


def test_readme_block_shows_the_augmented_runs_and_the_ensemble_verdict(augmented_runs):
    from gfr.study import wild
    from gfr.report import docs
    from gfr.study import results

    members = ["VGG16-it5", "ResNet50-it5"]
    rng = np.random.default_rng(0)
    photos = pd.DataFrame({"file": [f"{k}.jpg" for k in range(20)], "source": ["lfw", "utk"] * 10,
                           "male": rng.integers(0, 2, 20), "detector": "hog"})
    predictions = {m: photos.assign(p_male=rng.random(20)) for m in members}
    summary = {"default_framing": "landmarks",
               "models": wild.accuracy_table(predictions).to_dict("records"),
               "ensemble": {"members": members, "models": wild.ensemble_table(predictions, members).to_dict("records")}}
    table = results.collect(augmented_runs, [*members])
    block = squeezed(docs.beyond_block(summary, table.assign(chosen=False), augmented_runs))
    assert "Photo-like augmentation" in block
    for model in [*members, ensemble.name(members)]:
        assert f"| {model} | " in block
    judged = ensemble.verdict(ensemble.seed_accuracies(augmented_runs, members))
    assert f"the ensemble **{'wins' if judged['wins'] else 'does not win'}**" in block
    no_runs = table.assign(chosen=False).iloc[:0]  # nothing finished, no ensemble measured: no such table
    without = {k: v for k, v in summary.items() if k != "ensemble"}
    assert "Photo-like" not in docs.beyond_block(without, no_runs, augmented_runs)
