"""The original write-up's published numbers, shown beside ours as a reference column (never as our results)."""

# Test accuracy (%) per backbone and iteration, as published; inference on an RTX 3050.
TEST_ACCURACY = {
    ("VGG16", 1): 76.9, ("VGG16", 2): 84.4, ("VGG16", 3): 85.3,
    ("InceptionV3", 1): 89.7, ("InceptionV3", 2): 88.0, ("InceptionV3", 3): 90.1,
    ("InceptionResNetV2", 1): 90.0, ("InceptionResNetV2", 2): 88.4, ("InceptionResNetV2", 3): 93.7,
}
BACKBONES = tuple(dict.fromkeys(b for b, _ in TEST_ACCURACY))
ITERATIONS = tuple(sorted({it for _, it in TEST_ACCURACY}))
# Its set-up where known: a Keras study of keras.applications networks on CelebA's gender attribute.
WEIGHTS = "keras.applications' ImageNet weights (weights='imagenet': the files Keras downloads)"
LABELS = "CelebA's gender attribute (`Male`, its only one)"
INFERENCE_TIME_RANGE_S = (6.88, 9.08)
INFERENCE_HARDWARE = "NVIDIA RTX 3050"
CHOSEN = ("InceptionResNetV2", 3)


def test_accuracy(backbone: str, iteration: int) -> float | None:
    """The original's published test accuracy (%) for a cell, or None (ResNet50 and iteration 4 are ours)."""
    return TEST_ACCURACY.get((backbone, iteration))
