"""The Explorer's real matrices for a small layer, as JSON for the browser: W, B, A, ΔW, W′ and singular values.

The browser module fetches this for d, k <= 64 once the controls rest and draws the heatmaps itself. Pure numpy
(no NiceGUI); ``matrices_payload`` raises InvalidParameterError for a layer that is too large.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from loralens.app.explorer.view import SMALL_MATRIX_LIMIT, ExplorerState
from loralens.core.small_layer import small_layer
from loralens.errors import InvalidParameterError


def matrices_payload(state: ExplorerState) -> dict:
    """The five matrices (row-major, rounded to 4 decimals), a shared colour limit, both spectra and captions."""
    if state.d > SMALL_MATRIX_LIMIT or state.k > SMALL_MATRIX_LIMIT:
        raise InvalidParameterError(f"heatmaps are drawn for d, k ≤ {SMALL_MATRIX_LIMIT}, got {state.d}×{state.k}",
                                    where="d")
    return _payload(state.d, state.k, state.r, state.alpha, state.rslora, state.trained)


@lru_cache(maxsize=128)  # a slider moved back and forth asks for the same layers again
def _payload(d: int, k: int, r: int, alpha: float, rslora: bool, trained: bool) -> dict:
    layer = small_layer(d, k, r, alpha, rslora, trained=trained)
    limit = float(max(abs(layer.w).max(), abs(layer.merged).max())) or 1.0
    titles = (
        (layer.w, f"W ({d}×{k}) frozen"),
        (layer.b, f"B ({d}×{r})"),
        (layer.a, f"A ({r}×{k})"),
        (layer.delta, "ΔW = s·B·A"),
        (layer.merged, "W′ = W + ΔW"),
    )
    scale = max(1.0, float(layer.target_singular_values[0]))
    nonzero = int((layer.delta_singular_values > 1e-10 * scale).sum())
    state_text = (
        "After training, s·B·A is the best rank-r approximation of the task update ΔW* (Eckart–Young)."
        if trained
        else "At initialisation B = 0, so ΔW = 0 and W′ = W exactly: the model starts as the pretrained one."
    )
    return {
        "matrices": [
            {"title": title, "rows": int(m.shape[0]), "cols": int(m.shape[1]),
             "values": np.round(m, 4).ravel().tolist()}
            for m, title in titles
        ],
        "limit": limit,
        "delta_sv": [float(v) for v in layer.delta_singular_values],
        "target_sv": [float(v) for v in layer.target_singular_values],
        "caption": f"{state_text} Colour scale: blue negative, white 0, orange positive.",
        "sv_caption": (
            f"Singular values of ΔW from a float64 SVD: {nonzero} of {len(layer.delta_singular_values)} are "
            f"non-zero (rank(B·A) ≤ r = {r}); the rest are 0 up to round-off."
        ),
    }
