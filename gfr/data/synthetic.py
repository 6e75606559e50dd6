"""Synthetic face-like images written in CelebA's layout, for tests, notebook checks and scale benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gfr import files
from gfr.data import celeba
from gfr.progress import meter as progress_meter

ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Eyebrows Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


def face(male: bool, rng: np.random.Generator, size=(218, 178)) -> Image.Image:
    """A face-like picture whose shape and colours depend on the label (so a head can learn it)."""
    h, w = size
    bg = tuple(int(v) for v in rng.integers(0, 255, 3))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    skin = (200, 150, 120) if male else (235, 190, 170)
    jitter = rng.integers(-25, 25, 3)
    skin = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(skin, jitter))
    width = 0.62 if male else 0.5
    draw.ellipse([w * (0.5 - width / 2), h * 0.18, w * (0.5 + width / 2), h * 0.85], fill=skin)
    if male:
        draw.rectangle([w * 0.3, h * 0.68, w * 0.7, h * 0.8], fill=(60, 40, 30))
    else:
        draw.ellipse([w * 0.4, h * 0.66, w * 0.6, h * 0.72], fill=(180, 30, 60))
    noise = rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))


def write_dataset(root: str | os.PathLike, n: int, seed: int = 0, size=(218, 178), start_id: int = 1, progress: bool = False) -> Path:
    """Write `n` synthetic images, a matching list_attr_celeba.txt and identity_CelebA.txt (two images a person,
    same label) under `root`; return `root`."""
    root = Path(root)
    images = root / celeba.IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    attrs = np.where(rng.random((n, len(ATTRIBUTES))) < 0.3, 1, -1)
    male_col = ATTRIBUTES.index(celeba.LABEL)
    attrs[:, male_col] = np.where(np.arange(n) % 5 < 2, 1, -1)  # 40% male, like CelebA
    lines = [str(n), " ".join(ATTRIBUTES)]
    meter = progress_meter(n, "synthetic images", enabled=progress)
    for i in range(n):
        name = f"{start_id + i:06d}.jpg"
        with files.atomic_path(images / name, suffix=".jpg") as tmp:
            face(attrs[i, male_col] == 1, rng, size).save(tmp, quality=90)
        lines.append(name + " " + " ".join(f"{v:2d}" for v in attrs[i]))
        meter.update(1)
    meter.close()
    files.write_text(root / celeba.ATTR_FILE, "\r\n".join(lines) + "\r\n")
    person = np.empty(n, int)  # consecutive images of the same label, two by two, are one person
    for value, offset in ((1, 1), (-1, 1 + n)):
        rows = np.flatnonzero(attrs[:, male_col] == value)
        person[rows] = offset + np.arange(len(rows)) // 2
    files.write_text(root / celeba.IDENTITY_FILE, "".join(f"{start_id + i:06d}.jpg {person[i]}\n" for i in range(n)))
    return root
