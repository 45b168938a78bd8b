"""Detect a red official seal (公章) on a page image: red colour mask, ring-shaped outline, marks inside."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class SealFinding:
    """Where a seal was found (image pixels) and the shape measures that accepted it."""

    x: int
    y: int
    w: int
    h: int
    ring_coverage: float
    inner_fill: float


def red_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels of seal red: saturated, reddish hue (either side of 0°), not too dark (uint8 0/1)."""
    import cv2

    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    h, s, v = hsv[:, :, 0], hsv[:, :, 1], hsv[:, :, 2]
    mask = ((h <= 12) | (h >= 160)) & (s >= 70) & (v >= 70)
    return mask.astype(np.uint8)


def find_seals(
    img: Any, *, max_side: int = 1000, min_frac: float = 0.06, max_frac: float = 0.6
) -> list[SealFinding]:
    """Red seals on an RGB image (PIL or array).

    A seal is a red connected region, roughly as tall as wide, between `min_frac` and `max_frac` of the
    image's shorter side, whose outer band is red nearly all the way round (the ring) and whose interior
    holds some red marks (the name arc, the star) without being solid. A red underline, a red heading or a
    red tick fails one of these.
    """
    import cv2

    arr = np.asarray(img.convert("RGB")) if not isinstance(img, np.ndarray) else img
    h0, w0 = arr.shape[:2]
    scale = min(1.0, max_side / max(h0, w0, 1))
    if scale < 1.0:
        arr = cv2.resize(
            arr, (max(1, int(w0 * scale)), max(1, int(h0 * scale))), interpolation=cv2.INTER_AREA
        )
    mask = red_mask(arr)
    if int(mask.sum()) < 50:
        return []
    # Close small gaps so the ring and the characters along it form one region.
    k = max(3, int(min(arr.shape[:2]) * 0.006) | 1)
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    short = min(arr.shape[:2])
    found: list[SealFinding] = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        if not (min_frac * short <= max(w, h) <= max_frac * max(arr.shape[:2])):
            continue
        if not 0.6 <= w / max(h, 1) <= 1.65:
            continue
        cov, inner = _ring_measures(mask[y : y + h, x : x + w])
        if cov >= 0.7 and 0.015 <= inner <= 0.6:
            found.append(
                SealFinding(int(x / scale), int(y / scale), int(w / scale), int(h / scale), cov, inner)
            )
    return found


def _ring_measures(patch: np.ndarray) -> tuple[float, float]:
    h, w = patch.shape
    ys, xs = np.nonzero(patch)
    if len(xs) == 0:
        return 0.0, 0.0
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # Normalised elliptic radius, so oval seals (合同专用章 are often oval) count as rings too.
    nx = (xs - cx) / max(w / 2, 1)
    ny = (ys - cy) / max(h / 2, 1)
    r = np.sqrt(nx * nx + ny * ny)
    band = (r >= 0.78) & (r <= 1.08)
    bins = 48
    ang = ((np.arctan2(ny[band], nx[band]) + math.pi) / (2 * math.pi) * bins).astype(int) % bins
    coverage = len(np.unique(ang)) / bins
    yy, xx = np.mgrid[0:h, 0:w]
    rr = np.sqrt(((xx - cx) / max(w / 2, 1)) ** 2 + ((yy - cy) / max(h / 2, 1)) ** 2)
    inner_area = rr < 0.7
    inner_fill = float(patch[inner_area].mean()) if inner_area.any() else 0.0
    return coverage, inner_fill


def has_seal(img: Any) -> bool:
    """True when at least one red seal is found on the image."""
    return bool(find_seals(img))
