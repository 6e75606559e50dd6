"""Photo-like augmentation of CelebA's aligned images: mirror, small rotation/scale/shift, colour, grayscale.

Each augmented image depends only on (seed, copy, row) and the parameters, never on the batch it comes in, so
a cached augmented copy is reproducible whatever the batch size or the machine. The geometric part is a
random similarity transform about the image centre, warped as `gfr predict --detect-faces` warps photos
(`faces.warp`: bilinear, edge pixels repeated past the border), so it mimics the alignment error of a photo's
landmarks; the colour part mimics other cameras and black-and-white photos. A tight crop keeps only a box
around the face and repeats its edge pixels outside it: what aligning a tightly cropped photo (UTKFace's, many
ID-style photos) onto CelebA's frame gives.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gfr.data import faces
from gfr.params import AugmentParams

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as PIL's convert("L")


def draw(p: AugmentParams, seed: int, copy: int, row: int) -> dict:
    """The random choices for one image: a pure function of (seed, copy, row)."""
    rng = np.random.default_rng([seed, copy, row])
    u = rng.uniform(-1.0, 1.0, size=7)
    choice = {
        "mirror": bool(rng.random() < p.mirror),
        "angle": float(np.deg2rad(p.rotation_deg) * u[0]),
        "scale": float(np.exp(np.log1p(p.scale) * u[1])),
        "shift": (float(p.shift * u[2]), float(p.shift * u[3])),  # fraction of width, height
        "brightness": float(1.0 + p.brightness * u[4]),
        "contrast": float(1.0 + p.contrast * u[5]),
        "saturation": float(1.0 + p.saturation * u[6]),
        "grayscale": bool(rng.random() < p.grayscale),
    }
    if p.tight_crop:  # drawn last, so copies made without tight crops keep their draws
        grow = rng.uniform(0.0, p.tight_crop_margin, size=4)  # left, top, right, bottom
        choice["crop"] = tuple(float(g) for g in grow) if rng.random() < p.tight_crop else None
    return choice


def geometry(choice: dict, size: tuple[int, int]) -> np.ndarray:
    """The 2x3 similarity transform of `choice` (rotation and scale about the centre, then the shift)."""
    h, w = size
    c, s = choice["scale"] * np.cos(choice["angle"]), choice["scale"] * np.sin(choice["angle"])
    rot = np.array([[c, -s], [s, c]])
    centre = np.array([w / 2.0, h / 2.0])
    offset = centre - rot @ centre + np.array([choice["shift"][0] * w, choice["shift"][1] * h])
    return np.hstack([rot, offset[:, None]])


def tight_crop(rgb: np.ndarray, grow: tuple[float, float, float, float]) -> np.ndarray:
    """Only CelebA's face box, grown on each side (left, top, right, bottom) by that fraction of its size, kept;
    the edge pixels of that box repeated outside it, as `faces.warp` repeats a photo's edges."""
    h, w = rgb.shape[:2]
    fy, fx = h / faces.CELEBA_SIZE[0], w / faces.CELEBA_SIZE[1]
    x0, y0, x1, y1 = faces.CELEBA_BOX
    sx, sy = x1 - x0, y1 - y0
    left, top = max(0, round((x0 - grow[0] * sx) * fx)), max(0, round((y0 - grow[1] * sy) * fy))
    right, bottom = min(w, round((x1 + grow[2] * sx) * fx)), min(h, round((y1 + grow[3] * sy) * fy))
    return np.pad(rgb[top:bottom, left:right], ((top, h - bottom), (left, w - right), (0, 0)), mode="edge")


def colour(rgb: np.ndarray, choice: dict) -> np.ndarray:
    """Brightness, contrast and saturation factors, then grayscale (kept as 3 equal channels)."""
    x = rgb.astype(np.float32) * choice["brightness"]
    gray = (x @ LUMA.astype(np.float32))[..., None]
    x = (x - gray.mean()) * choice["contrast"] + gray.mean()
    gray = (x @ LUMA.astype(np.float32))[..., None]
    x = gray + (x - gray) * choice["saturation"]
    if choice["grayscale"]:
        x = np.repeat((x @ LUMA.astype(np.float32))[..., None], 3, axis=-1)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def augment(rgb: np.ndarray, choice: dict) -> np.ndarray:
    """One uint8 RGB image augmented by `choice` (same size)."""
    if choice["mirror"]:
        rgb = rgb[:, ::-1]
    rgb = faces.warp(np.ascontiguousarray(rgb), geometry(choice, rgb.shape[:2]), rgb.shape[:2])
    if choice.get("crop"):
        rgb = tight_crop(rgb, choice["crop"])
    return colour(rgb, choice)


def augment_batch(batch: np.ndarray, first_row: int, p: AugmentParams, seed: int, copy: int) -> np.ndarray:
    """A uint8 batch whose rows are the images `first_row`, `first_row + 1`, ... of the list being augmented."""
    return np.stack([augment(img, draw(p, seed, copy, first_row + i)) for i, img in enumerate(batch)])


def cache_spec(p: AugmentParams, seed: int, copy: int) -> dict:
    """What an augmented copy's cached features depend on besides the images (a feature-cache key part)."""
    spec = {k: v for k, v in dataclasses.asdict(p).items() if k != "copies"}  # copy k is the same for any count
    if not p.tight_crop:  # no tight crops: the same images as copies made before tight crops existed
        spec = {k: v for k, v in spec.items() if not k.startswith("tight_crop")}
    return {**spec, "seed": seed, "copy": copy}
