"""The Explorer (home page): drag the rank and see W + B·A = W′, the exact counts and the real matrices.

The page is drawn and run in the browser by ``web/explorer.js`` (served as a static file of the app): a slider
step repaints with no round trip and the address bar follows with history.replaceState. The server sends the page
once and, for d, k <= 64, the real matrices as JSON from ``/api/explorer/matrices`` (computed in a worker thread,
never blocking, any bad query answered with a one-line error). Python stays the oracle of every number the module
shows: see ``view.py`` and the golden vectors.
"""

from __future__ import annotations

import asyncio
import json

from fastapi.responses import JSONResponse
from nicegui import app, ui
from starlette.requests import Request

from loralens.app.explorer.view import state_from_query
from loralens.app.layout import error_label, page_frame, show_message, tag
from loralens.app.url_state import embed_of
from loralens.errors import LoraLensError
from loralens.web import WEB_DIR, version

WEB_PATH = "/_loralens/web"
MATRICES_PATH = "/api/explorer/matrices"

_TEXT_WHY = (
    "Pretrained models have a low intrinsic dimension: the change that adapts them to a task can be described by "
    "far fewer numbers than the model has (Aghajanyan et al., 2020). LoRA bets that the update ΔW of each weight "
    "matrix has a low rank r, writes it as B·A and trains only B and A. The LoRA paper found r as small as 1–8 "
    "enough for GPT-3's attention weights, and that the learned ΔW amplifies directions that W already has but "
    "does not emphasise."
)


def head_html() -> str:
    """The module and its style sheet as files of this app (script-src 'self'; no inline script or handler)."""
    v = version()
    return (f'<link rel="stylesheet" href="{WEB_PATH}/explorer.css?v={v}">'
            f'<script src="{WEB_PATH}/explorer.js?v={v}" defer></script>')


def register() -> None:
    app.add_static_files(WEB_PATH, WEB_DIR)

    @app.get(MATRICES_PATH)
    async def matrices(request: Request) -> JSONResponse:
        return await matrices_response(dict(request.query_params))

    @ui.page("/")
    def explorer(request: Request) -> None:
        query = dict(request.query_params)
        _, messages = state_from_query(query)  # the module reads the same state; the server names what was wrong
        ui.add_head_html(head_html())
        with page_frame("Explorer", embed_of(query)):
            show_message(tag(error_label(), "url-message"), "; ".join(messages))
            options = {"links": True, "history": True, "matrices": MATRICES_PATH, "messages": False}
            mount = ui.element("div").classes("w-full").mark("explorer")
            mount.props["data-ll-explorer"] = json.dumps(options)
            mount.props["data-testid"] = "explorer"
            with ui.element("noscript"):
                ui.label("The Explorer is drawn by JavaScript: turn it on to see it.")
            ui.label("Why low rank works").classes("text-base font-semibold")
            ui.label(_TEXT_WHY).classes("text-sm")


async def matrices_response(query: dict[str, str]) -> JSONResponse:
    """The heatmap data for a small layer, or a 400 with one line saying what is wrong with the query."""
    state, messages = state_from_query(query)
    if messages:
        return JSONResponse({"error": "; ".join(messages)}, status_code=400)
    try:
        from loralens.app.explorer.matrices import matrices_payload  # numpy: imported when first asked

        payload = await asyncio.to_thread(matrices_payload, state)
    except LoraLensError as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    return JSONResponse(payload)
