"""Find faces in a photo and cut each out framed the way CelebA's aligned images frame a face."""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image

from gfr.data import celeba
from gfr.errors import GfrError
from gfr.data.images import decode
from gfr.progress import meter as progress_meter

CELEBA_SIZE = (218, 178)  # (height, width) of CelebA's aligned images
INSTALL = "face detection needs dlib (the dlib-bin package, with dlib's HOG face detector inside): pip install .[peers]"

# Where CelebA's aligned frame lies around dlib's HOG face box. `box` is the box side in pixels (dlib's
# boxes are square); the frame's centre is the box centre moved by (FRAME_DX, FRAME_DY) box sides, and the
# frame is FRAME_WIDTH box sides wide with CelebA's 178:218 aspect. Measured by calibrate() below:
#   calibrate("/work/shared/celeba-5k", n=400, seed=0) on 400 images of the 5,000-image CelebA subset,
#   each rescaled by a random factor, log-uniform in [1, 1.44] (two of the detector's 6/5 pyramid steps,
#   so the box-size quantisation of the pyramid averages out), detector without upsampling:
#   a face in 392 of 400; medians (quartiles) DX -0.0003 (-0.021..0.018), DY -0.245 (-0.278..-0.216),
#   WIDTH 1.880 (1.790..2.016). Re-runs with 1,000 images (seeds 1, 2) gave DX -0.002/-0.001,
#   DY -0.246/-0.252, WIDTH 1.883/1.880. So a CelebA frame is ~1.88 box sides wide (~2.30 high), centred
#   on the box horizontally and ~a quarter side above the box centre (the box covers brows to chin).
FRAME_DX = 0.0
FRAME_DY = -0.245
FRAME_WIDTH = 1.88

# Detection runs on the photo rescaled so that its longer side lies in this range (pixels): small photos
# are enlarged so faces down to ~1/8 of the longer side reach the detector's 80-pixel window; large ones
# are shrunk to keep detection fast (faces under ~1/16 of the longer side are then missed).
DETECT_SIDE = (640, 1280)


@functools.lru_cache(maxsize=1)
def detector():
    """dlib's frontal face detector (HOG + linear SVM; its model is compiled into dlib)."""
    try:
        import dlib
    except ImportError:
        raise GfrError(INSTALL) from None
    return dlib.get_frontal_face_detector()


def detect(rgb: np.ndarray, scale: float | None = None) -> list[tuple[float, float, float, float]]:
    """Face boxes (left, top, right, bottom; right/bottom exclusive) in `rgb`'s pixels, largest first.

    The detector sees the image rescaled by `scale`; by default so that its longer side lies in DETECT_SIDE.
    """
    rgb = _check(rgb)
    height, width = rgb.shape[:2]
    if scale is None:
        longer = max(height, width)
        scale = min(max(1.0, DETECT_SIDE[0] / longer), DETECT_SIDE[1] / longer)
    seen = rgb
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        seen = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    boxes = [
        (r.left() / scale, r.top() / scale, (r.right() + 1) / scale, (r.bottom() + 1) / scale)
        for r in detector()(seen, 0)
    ]
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def frame(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The CelebA-style frame (left, top, right, bottom; exclusive) around a face box."""
    left, top, right, bottom = box
    side = ((right - left) + (bottom - top)) / 2
    width = FRAME_WIDTH * side
    height = width * CELEBA_SIZE[0] / CELEBA_SIZE[1]
    cx = (left + right) / 2 + FRAME_DX * side
    cy = (top + bottom) / 2 + FRAME_DY * side
    x0, y0 = round(cx - width / 2), round(cy - height / 2)
    return x0, y0, x0 + max(1, round(width)), y0 + max(1, round(height))


def cut(rgb: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of `rect` (which may reach past the border: the edge pixels are repeated there)."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = rect
    inside = rgb[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
    if inside.size == 0:
        raise ValueError(f"frame {rect} lies wholly outside a {width}x{height} image")
    pads = ((max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width)), (0, 0))
    return np.pad(inside, pads, mode="edge")


def aligned_crops(rgb: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
    """One uint8 (h, w, 3) crop per face found, framed like CelebA's aligned images, resized to `size`
    (height, width) bilinearly; largest face first; [] when no face is found."""
    rgb = _check(rgb)
    crops = []
    for box in detect(rgb):
        crop = Image.fromarray(cut(rgb, frame(box)))
        crops.append(np.asarray(crop.resize((size[1], size[0]), Image.BILINEAR), dtype=np.uint8))
    return crops


def calibrate(data_root: str | os.PathLike | None = None, n: int = 400, seed: int = 0, progress: bool = True) -> dict:
    """Measure FRAME_DX, FRAME_DY and FRAME_WIDTH on `n` aligned CelebA images (medians and quartiles).

    Each image is shown to the detector rescaled by a random factor, log-uniform over two pyramid steps
    (1 to 1.44), so that the constants hold for faces of any size, not just CelebA's.
    """
    root = celeba.data_dir(data_root)
    paths = sorted((root / celeba.IMAGES_DIR).glob("*.jpg"))
    if not paths:
        raise GfrError(f"{root / celeba.IMAGES_DIR}: no .jpg images to calibrate on")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(paths), size=min(n, len(paths)), replace=False)
    height, width = CELEBA_SIZE
    rows, off_size = [], 0
    meter = progress_meter(len(chosen), "calibrating face frame", enabled=progress)
    for index in chosen:
        rgb = decode(paths[index], None)
        meter.update(1)
        if rgb.shape[:2] != CELEBA_SIZE:
            off_size += 1
            continue
        boxes = detect(rgb, scale=float(np.exp(rng.uniform(0, np.log(1.44)))))
        if not boxes:
            continue
        left, top, right, bottom = boxes[0]
        side = ((right - left) + (bottom - top)) / 2
        rows.append(((width / 2 - (left + right) / 2) / side, (height / 2 - (top + bottom) / 2) / side, width / side))
    meter.close()
    if not rows:
        raise GfrError(f"{root}: the detector found no face in {len(chosen)} images; cannot calibrate")
    values = np.array(rows)
    quartiles = np.percentile(values, [25, 50, 75], axis=0)
    return {
        "images": int(len(chosen)),
        "not_178x218": off_size,
        "faces_found": int(len(rows)),
        **{name: float(quartiles[1, k]) for k, name in enumerate(("FRAME_DX", "FRAME_DY", "FRAME_WIDTH"))},
        "quartiles": {name: [float(quartiles[0, k]), float(quartiles[2, k])]
                      for k, name in enumerate(("FRAME_DX", "FRAME_DY", "FRAME_WIDTH"))},
    }


def _check(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (h, w, 3), got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)
