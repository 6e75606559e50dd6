"""study/identity: splits that keep each person in one part, and the test images whose person was seen in training."""

import numpy as np
import pandas as pd

from gfr.study import identity


def test_identity_disjoint_split_keeps_each_person_in_one_part():
    manifest = pd.DataFrame({"image_id": [f"{k}.jpg" for k in range(100)], "split": "train", "label": 1})
    people = np.arange(100) // 3
    parts = identity.disjoint_split(manifest, people, seed=1, val_fraction=0.2, test_fraction=0.2)
    assert all(len(set(parts[people == p])) == 1 for p in np.unique(people))
    assert abs((parts == "test").sum() - 20) <= 3 and abs((parts == "val").sum() - 20) <= 3  # whole people: about 20 each


def test_shared_test_images_are_those_whose_person_is_in_training():
    manifest = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "split": ["train", "test", "test", "val"]})
    assert identity.shared_test_images(manifest, np.array([1, 1, 2, 2])) == {"b"}
