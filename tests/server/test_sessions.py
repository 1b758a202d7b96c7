"""Every session's resources are freed when it ends: many sessions of every page (Inspector uploads included)
are opened and deleted, and the memory Python holds (tracemalloc, after a collection) returns near its baseline."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc

import numpy as np
import pytest
from nicegui import Client
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User
from safetensors.numpy import save

from loralens.app import sessions, workers
from loralens.app.inspector import page as inspector
from loralens.app.labs import page as labs
from loralens.app.site import PAGES

MB = 2**20
SESSIONS = 4


def big_adapter(modules: int = 32) -> tuple[bytes, bytes]:
    """A real PEFT-layout adapter of ~8 MB (F32, r = 16, 2048 × 2048 q_proj), written by the reference package."""
    rng = np.random.default_rng(0)
    tensors = {}
    for i in range(modules):
        prefix = f"base_model.model.model.layers.{i}.self_attn.q_proj"
        tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((16, 2048)).astype(np.float32)
        tensors[f"{prefix}.lora_B.weight"] = rng.standard_normal((2048, 16)).astype(np.float32)
    config = {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj"]}
    return json.dumps(config).encode(), save(tensors)


def live(kind: type) -> int:
    # type(), not isinstance(): isinstance reads obj.__class__, which some objects of other libraries loaded in the
    # same process (torch.distributed.reduce_op) answer with a deprecation warning
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), kind))


async def open_and_close(user: User, path: str, files: tuple[bytes, bytes]) -> None:
    client = await user.open(path)
    if path == "/inspector":
        await user.should_see("Showing the sample adapter", retries=300)
        upload = next(iter(user.find(marker="inspector-upload").elements))
        await upload.handle_uploads([SmallFileUpload("adapter_config.json", "application/json", files[0]),
                                     SmallFileUpload("adapter_model.safetensors", "application/octet-stream",
                                                     files[1])])
        await user.should_see("Showing upload adapter_model.safetensors", retries=300)
    elif path == "/labs":
        await user.should_see("A rank-4 LoRA", retries=300)
    client.delete()


async def settle() -> int:
    """Traced bytes once no run is left in the worker threads, after one collection."""
    for _ in range(200):
        if not workers.current.running and not workers.current.waiting:
            break
        await asyncio.sleep(0.05)
    sessions.collect()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_sessions_of_every_page_free_their_memory(user: User) -> None:
    files = big_adapter()
    assert len(files[1]) > 8 * MB
    paths = [page.path for page in PAGES]
    for path in paths:  # warm up: imports, the sample adapter, module caches
        await open_and_close(user, path, files)
    await user.open("/")  # the fixture keeps its last client: make it a light one
    await asyncio.sleep(0.3)
    tracemalloc.start()
    try:
        baseline = await settle()
        # earlier tests in this process may keep a page object of their own: count only what these sessions add
        pages_before, labs_before = live(inspector.InspectorPage), live(labs.LabView)
        for _ in range(SESSIONS):
            for path in paths:
                await open_and_close(user, path, files)
        await user.open("/")
        await asyncio.sleep(0.3)
        retained = await settle() - baseline
    finally:
        tracemalloc.stop()
    uploaded = SESSIONS * len(files[1])
    assert live(inspector.InspectorPage) <= pages_before
    assert live(labs.LabView) <= labs_before
    assert len(Client.instances) <= 2  # the light pages the fixture opened last
    # what one leaked Inspector session alone would hold is its adapter: ~8 MB
    assert retained < 4 * MB, f"retained {retained / MB:.1f} MB after {uploaded / MB:.0f} MB of uploads"


@pytest.mark.parametrize("cache", ["_is_gen_callable_cached", "_is_coroutine_callable_cached"])
def test_the_endpoint_caches_that_held_upload_routes_are_cleared(cache: str) -> None:
    from fastapi.dependencies import models

    function = getattr(models, cache)
    function(models._CallIdentity(lambda: None))
    assert function.cache_info().currsize >= 1
    sessions.clear_endpoint_caches()
    assert function.cache_info().currsize == 0
