"""The MicroSim folder that ``loralens export microsim`` writes: main.html, index.md and metadata.json as the
textbooks built with MkDocs use them (see dmccreary/microsims for the convention and the metadata schema).

Pure Python (no NiceGUI, no numpy): every text here is built from the package's own data (the browser module, the
lesson plan in core/lessons.py); the command writes the files atomically and adds the screenshot.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from loralens import __version__
from loralens.app.explorer.view import ExplorerState, rank_limit
from loralens.core.lessons import ASSESSMENT, OBJECTIVES
from loralens.web import asset

IFRAME_HEIGHT = 502  # what the textbooks give a MicroSim's iframe
DEFAULT_TITLE = "LoRA: Low-Rank Adaptation Explorer"
DESCRIPTION = (
    "Drag the rank of a LoRA adapter and watch W + ΔW = B·A = W′ and the exact parameter counts change: full "
    "fine-tuning trains d·k numbers, LoRA r(d + k). The break-even rank, the largest rank for a savings target "
    "and the scaling α/r (or α/√r with rsLoRA) follow live."
)


@dataclass(frozen=True)
class MicroSim:
    """What one export writes (the screenshot aside)."""

    name: str  # the folder's name: the textbook links /sims/<name>/
    main_html: str
    index_md: str
    metadata: dict

    @property
    def image_name(self) -> str:
        return f"{self.name}.png"


def compact_js(source: str) -> str:
    """The module without its comment lines and indentation (the file stays readable; the page stays small).

    Only whole-line comments are removed (// ..., and the /* ... */ and /** ... */ blocks whose lines start with
    '*'), never text after code, so a string such as 'http://' is never touched.
    """
    lines = []
    in_block = False
    for line in source.splitlines():
        text = line.strip()
        if in_block:
            in_block = not text.endswith("*/")
            continue
        if text.startswith("/*"):
            in_block = not text.endswith("*/")
            continue
        if not text or text.startswith("//"):
            continue
        lines.append(text)
    return "\n".join(lines) + "\n"


def compact_css(source: str) -> str:
    """The style sheet without comments and runs of white space."""
    text = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"\s+", " ", text).replace("; ", ";").replace(" { ", "{").replace(" }", "}").strip() + "\n"


def initial_query(state: ExplorerState) -> dict[str, str]:
    """The starting state as URL parameters (only what differs from the Explorer's defaults)."""
    defaults = ExplorerState().as_dict()
    out = {}
    for name, value in state.as_dict().items():
        if value != defaults[name] or name in ("d", "k", "r"):
            out[name] = "true" if value is True else "false" if value is False else _number(value)
    return out


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def main_html(state: ExplorerState, title: str) -> str:
    """A self-contained page: style and a classic script inline (file:// blocks module imports), no other host."""
    options = {"links": False, "history": True, "matrices": None, "initial": initial_query(state)}
    script = compact_js(asset("explorer.js")).replace("</", "<\\/")  # never close the script element early
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n"
        f"<meta name=\"generator\" content=\"loralens {__version__} (loralens export microsim)\">\n"
        "<style>\nbody{margin:0;padding:6px 8px;background:#fff}"
        ".llx-title{font:650 16px/1.25 system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif;margin:0 0 4px}"
        ".llx-back{display:block;margin:12px 0 4px;font:14px system-ui,sans-serif;color:#0072B2}\n"
        f"{compact_css(asset('explorer.css'))}</style>\n</head>\n<body>\n<main>\n"
        f"<h1 class=\"llx-title\">{html.escape(title)}</h1>\n"
        f"<div data-ll-explorer=\"{html.escape(json.dumps(options, ensure_ascii=False), quote=True)}\" "
        "data-testid=\"explorer\"></div>\n"
        "<a class=\"llx-back\" href=\".\">Back to Documentation</a>\n</main>\n"
        f"<script>\n{script}</script>\n</body>\n</html>\n"
    )


def index_md(name: str, title: str, state: ExplorerState) -> str:
    """The textbook page: front matter, the iframe, a fullscreen link, the description and the lesson plan."""
    objectives = "\n".join(f"- {o.text}" for o in OBJECTIVES)
    assessment = "\n".join(
        f"{i}. {q.prompt}\n\n    <details><summary>Answer</summary>{html.escape(q.answer)}</details>\n"
        for i, q in enumerate(ASSESSMENT, 1)
    )
    rmax = f", here 1 to {state.rank_max:,}" if state.rmax else ""
    return f"""---
title: {title}
description: {DESCRIPTION}
image: /sims/{name}/{name}.png
og:image: /sims/{name}/{name}.png
twitter:image: /sims/{name}/{name}.png
social:
   cards: false
---

# {title}

<iframe src="main.html" height="{IFRAME_HEIGHT}px" width="100%" scrolling="no"></iframe>

[Run the {title} MicroSim Fullscreen](./main.html){{ .md-button .md-button--primary }}

Copy this line to embed it in another page:

```html
<iframe src="https://YOUR-SITE/sims/{name}/main.html" height="{IFRAME_HEIGHT}px" width="100%" scrolling="no"></iframe>
```

## Description

{DESCRIPTION}

Instead of updating the frozen weight $W$ ($d \\times k$), LoRA trains the low-rank update $\\Delta W = BA$ with
$B \\in \\mathbb{{R}}^{{d \\times r}}$ (it starts at zero) and $A \\in \\mathbb{{R}}^{{r \\times k}}$ (it starts
random), and merges $W' = W + \\tfrac{{\\alpha}}{{r}} BA$ after training, so inference costs nothing extra.

| Method | Trainable parameters |
|---|---|
| Full fine-tuning | $d \\times k$ |
| LoRA (rank $r$) | $r(d + k)$ |

The numbers are exact (every count is an integer; shares are never rounded to 0% or 100% unless exact) and the
picture is honest: the bars are linear, with a magnified inset when LoRA's share is tiny, and B and A are drawn
with r to scale against d and k (a factor thinner than 3 units is drawn 3 units thick, and the page says so).

## How to use

1. **Rank r**: drag the slider (log-scaled for large layers, so every small rank is reachable{rmax}) or press the
   arrow keys to step by 1; type an exact rank in the box.
2. **d and k**: the layer's output and input features, with presets of real layers (LLaMA, GPT-3, BERT); untick
   *square* for a rectangular layer.
3. **lora_alpha** and **α/r or α/√r** (rsLoRA): the scaling of ΔW in the merge formula.
4. **Savings target**: the page names the largest rank that saves at least this share of the parameters.

Every control is in the address: `main.html?d=1024&k=1024&r=8` opens at that state. For a lesson, open
`main.html?answers=false`: the largest rank for the target is then hidden, for the students to find.

## Lesson Plan

**Learning Objectives:**

{objectives}

**Activities:**

1. Find the rank that saves 99% of the parameters of a 1024×1024 matrix: drag the rank until the savings line
   says 99%, then check it with `main.html?d=1024&answers=false` (the answer: r = 5, 10,240 parameters).
2. Compare parameter counts for different model sizes: choose the layer presets (768², 4096², 8192², 12288²)
   and watch the share fall as the layers grow, r(d + k)/(dk) = r/k + r/d.
3. Discuss when LoRA might not work well: what if a task needs a full-rank update? Push r past the break-even
   rank dk/(d + k) and read the warning: a rank-r update cannot hold more than r directions.
4. Discuss merging and swapping: after training, W′ = W + (α/r)·B·A costs exactly d·k multiply-adds per token (no
   inference latency); one frozen model can serve many tasks by swapping small adapters.

**Assessment:**

{assessment}
## References

- [LoRA: Low-Rank Adaptation of Large Language Models](https://arxiv.org/abs/2106.09685) - the original paper
- [Hugging Face PEFT](https://huggingface.co/docs/peft) - the library whose counts these are
- Made with loralens {__version__} (`loralens export microsim`)
"""


def metadata(name: str, title: str, state: ExplorerState, now: datetime | None = None) -> dict:
    """The MicroSim metadata (the schema's microsim object: dublinCore, search, educational, technical,
    userInterface, each with its required fields)."""
    when = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    rank_max = rank_limit(state.d, state.k, state.rmax)
    return {
        "microsim": {
            "dublinCore": {
                "title": title,
                "creator": ["loralens"],
                "subject": ["Machine Learning", "Linear Algebra", "Low-Rank Adaptation", "Fine-tuning"],
                "description": DESCRIPTION,
                "publisher": "loralens",
                "date": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "type": "Interactive Simulation",
                "format": "text/html",
                "identifier": f"sims/{name}/main.html",
                "source": f"loralens {__version__}: loralens export microsim",
                "language": "en",
                "rights": "MIT",
            },
            "search": {
                "tags": ["LoRA", "low-rank adaptation", "PEFT", "fine-tuning", "matrix rank", "parameter count",
                         "rsLoRA", "linear algebra"],
                "visualizationType": ["diagram", "chart", "interactive-demo"],
                "interactionLevel": "high",
                "complexity": 4,
            },
            "educational": {
                "gradeLevel": ["Undergraduate", "Graduate", "Adult"],
                "subjectArea": ["Computer Science", "Mathematics"],
                "topic": ["Low-Rank Adaptation", "Parameter-efficient fine-tuning", "Matrix factorisation"],
                "learningObjectives": [o.text for o in OBJECTIVES],
                "bloomsTaxonomy": ["Understand", "Apply", "Analyze"],
                "prerequisites": ["Matrix multiplication", "Matrix rank", "What fine-tuning a neural network means"],
            },
            "technical": {
                "framework": "vanilla-js",
                "canvasDimensions": {"width": 700, "height": IFRAME_HEIGHT, "responsive": True},
                "dependencies": [],
                "deviceRequirements": {"minScreenWidth": 360, "networkRequired": False, "keyboardRequired": False,
                                       "touchSupport": True},
            },
            "userInterface": {
                "controls": [
                    _slider("rank", "rank r", 1, rank_max, state.r, rank_max > 128),
                    {"id": "rank-input", "type": "number-input", "label": "rank r (exact)"},
                    _slider("d-slider", "d (out)", 1, 65_536, state.d, True),
                    {"id": "k-slider", "type": "slider", "label": "k (in)"},
                    {"id": "square", "type": "checkbox", "label": "square (k = d)"},
                    {"id": "presets", "type": "dropdown", "label": "layer presets"},
                    {"id": "alpha", "type": "number-input", "label": "lora_alpha"},
                    {"id": "rslora", "type": "toggle-button", "label": "α/r or α/√r (rsLoRA)"},
                    {"id": "target", "type": "number-input", "label": "savings target %"},
                ],
            },
        }
    }


def _slider(id_: str, label: str, low: int, high: int, default: int, logarithmic: bool) -> dict:
    return {"id": id_, "type": "slider", "label": label,
            "properties": {"min": low, "max": high, "default": default, "step": 1, "logarithmic": logarithmic}}


def build(name: str, state: ExplorerState, title: str = DEFAULT_TITLE, now: datetime | None = None) -> MicroSim:
    return MicroSim(name=name, main_html=main_html(state, title), index_md=index_md(name, title, state),
                    metadata=metadata(name, title, state, now))
