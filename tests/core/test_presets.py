"""Every preset against its published parameter count (the figure and its source are in the data file), and the
presets' data files against their schema."""

from __future__ import annotations

import pytest

from loralens.core.architectures import PRESETS, PUBLISHED


@pytest.mark.parametrize("hf_id", list(PRESETS))
def test_total_is_the_published_size(hf_id: str) -> None:
    published = PUBLISHED[hf_id]
    assert published.source
    assert abs(PRESETS[hf_id].total_params - published.params) <= published.tolerance, published.source


def test_every_requested_family_has_presets() -> None:
    types = {a.model_type for a in PRESETS.values()}
    assert {"llama", "qwen2", "qwen3", "qwen3_moe", "mistral", "mixtral", "gemma2", "gemma3_text", "phi3"} <= types
    assert len(PRESETS) >= 40
