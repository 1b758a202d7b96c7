"""Every chart's series colours stay apart for colour-blind readers and in grey scale.

Colour vision deficiency is simulated with the matrices of Machado, Oliveira & Fernandes (2009, severity 1.0)
applied in linear RGB; colours are compared in CIELAB (D65): ΔE76 between the simulated colours, and the
difference in lightness L* for grey scale (what a black-and-white print keeps)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from loralens.app import palette
from loralens.app.labs import view

DEUTERANOPIA = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 0.968881]])
PROTANOPIA = np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                       [-0.003882, -0.048116, 1.051998]])
MIN_DELTA_E = 20.0  # clearly different hues, for each kind of vision
MIN_LIGHTNESS = 8.0  # series of equal standing, in grey scale
MIN_ORDERED_STEP = 7.0  # neighbours of an ordered series (a sweep), which also rise monotonically in lightness


def linear(hex_colour: str) -> np.ndarray:
    srgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def lab(rgb_linear: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]]) @ np.clip(rgb_linear, 0, 1)
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def differences(a: str, b: str) -> dict[str, float]:
    la, lb = linear(a), linear(b)
    return {
        "normal": float(np.linalg.norm(lab(la) - lab(lb))),
        "deuteranopia": float(np.linalg.norm(lab(DEUTERANOPIA @ la) - lab(DEUTERANOPIA @ lb))),
        "protanopia": float(np.linalg.norm(lab(PROTANOPIA @ la) - lab(PROTANOPIA @ lb))),
        "lightness": float(abs(lab(la)[0] - lab(lb)[0])),
    }


def categorical_problems(colours: list[str]) -> list[str]:
    problems = []
    for a, b in itertools.combinations(colours, 2):
        diff = differences(a, b)
        for vision in ("normal", "deuteranopia", "protanopia"):
            if diff[vision] < MIN_DELTA_E:
                problems.append(f"{a} vs {b}: ΔE {diff[vision]:.1f} with {vision}")
        if diff["lightness"] < MIN_LIGHTNESS:
            problems.append(f"{a} vs {b}: ΔL* {diff['lightness']:.1f} in grey scale")
    return problems


def ordered_problems(colours: list[str]) -> list[str]:
    lightness = [lab(linear(c))[0] for c in colours]
    steps = np.diff(lightness)
    return [f"{colours[i]} -> {colours[i + 1]}: ΔL* {step:.1f}" for i, step in enumerate(steps)
            if step < MIN_ORDERED_STEP]


def test_the_checks_catch_the_colours_the_issue_reported() -> None:
    """PEFT's default and PiSSA were orange and vermillion: too close for a deuteranope."""
    assert categorical_problems([palette.ORANGE, palette.VERMILLION])
    assert categorical_problems([palette.PURPLE, palette.GREY])  # the round-off bars' old pair
    assert ordered_problems(list(reversed(palette.ORDERED)))


def test_palettes_meet_the_bounds() -> None:
    assert categorical_problems(list(palette.CATEGORICAL)) == []
    assert ordered_problems(list(palette.ORDERED)) == []


def _series_colours(option: dict) -> list[str]:
    return [s["color"] for s in option["series"] if s.get("type") != "heatmap"]


@pytest.mark.parametrize("lab", ["fit", "init", "merge", "subspace"])
def test_series_of_every_chart_are_told_apart(lab_results: dict, lab: str) -> None:
    _, result = lab_results[lab]
    checked = 0
    for option in view.CHARTS[lab](result):
        colours = _series_colours(option)
        if len(colours) < 2:
            continue
        checked += 1
        if all(c in palette.ORDERED for c in colours):
            assert ordered_problems(colours) == [], option["title"]
        else:
            assert len(set(colours)) == len(colours), option["title"]
            assert categorical_problems(colours) == [], option["title"]
    assert checked >= 2
