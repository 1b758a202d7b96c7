"""The Explorer as a notebook widget (Jupyter, JupyterLab, VS Code, Colab), through anywidget.

    from loralens.widgets import Explorer
    w = Explorer(d=4096, r=8)
    w            # the Explorer, drawn by the same browser module as the app and the MicroSim
    w.r = 5      # moves the slider; dragging the slider changes w.r

The state is a set of traits synced both ways; a value out of range is refused with a TraitError that names the
trait and its range. Needs the optional extra: ``pip install 'loralens[notebook]'``.
"""

from __future__ import annotations

try:
    import anywidget
    import traitlets
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError("loralens.widgets needs anywidget: pip install 'loralens[notebook]'") from error

from loralens.app.explorer.view import SCHEMA, rank_limit, rank_limit_text
from loralens.web import asset

_RANGES = {p.name: (p.low, p.high) for p in SCHEMA}
TRAITS = ("d", "k", "r", "alpha", "rslora", "square", "target", "rmax", "answers")

# anywidget loads an ES module: the classic script defines globalThis.LoraExplorer, and this adapter mounts it
_ADAPTER = """
const NAMES = %s;
export default {
  render({ model, el }) {
    const X = globalThis.LoraExplorer;
    const initial = {};
    for (const name of NAMES) initial[name] = String(model.get(name));
    const handle = X.mount(el, {
      query: {}, initial, history: false, links: false,
      onChange(state) {  // the page moved: write back only what differs (no echo of the model's own change)
        let changed = false;
        for (const name of NAMES) if (model.get(name) !== state[name]) { model.set(name, state[name]); changed = true; }
        if (changed) model.save_changes();
      },
    });
    const pull = () => {
      const changes = {};
      for (const name of NAMES) changes[name] = model.get(name);
      handle.setState(changes);
    };
    for (const name of NAMES) model.on(`change:${name}`, pull);
    return () => { for (const name of NAMES) model.off(`change:${name}`, pull); handle.destroy(); };
  },
};
""" % list(TRAITS)


class Explorer(anywidget.AnyWidget):
    """LoRA's W + B·A = W′ with exact counts, live in a notebook. Traits: d, k, r, alpha, rslora, square,
    target, rmax, answers (as the Explorer's URL parameters)."""

    _esm = asset("explorer.js") + _ADAPTER
    _css = asset("explorer.css")

    d = traitlets.Int(4096, help="output features of the layer (1..65536)").tag(sync=True)
    k = traitlets.Int(4096, help="input features of the layer (1..65536)").tag(sync=True)
    r = traitlets.Int(8, help="LoRA rank, 1..min(d, k) (or ..rmax)").tag(sync=True)
    alpha = traitlets.Float(16.0, help="lora_alpha (0.001..100000)").tag(sync=True)
    rslora = traitlets.Bool(False, help="scale by alpha/sqrt(r) (rsLoRA) instead of alpha/r").tag(sync=True)
    square = traitlets.Bool(True, help="keep k = d").tag(sync=True)
    target = traitlets.Float(99.0, help="savings target in percent (1..99.999)").tag(sync=True)
    rmax = traitlets.Int(0, help="the rank slider's maximum (0: min(d, k))").tag(sync=True)
    answers = traitlets.Bool(True, help="show the largest rank for the target (false in a lesson)").tag(sync=True)

    def __init__(self, d: int = 4096, k: int | None = None, r: int = 8, **traits: object) -> None:
        traits.setdefault("square", k is None or k == d)
        super().__init__(d=d, k=d if k is None else k, r=r, **traits)

    @traitlets.validate("d", "k", "rmax", "alpha", "target")
    def _in_range(self, proposal: dict) -> object:
        name, value = proposal["trait"].name, proposal["value"]
        low, high = _RANGES[name]
        if not low <= value <= high:
            raise traitlets.TraitError(f"{name}: must be from {low:,g} to {high:,g}, got {value:,g}")
        return value

    @traitlets.validate("r")
    def _rank_in_range(self, proposal: dict) -> int:
        value, limit = proposal["value"], rank_limit(self.d, self.k, self.rmax)
        if not 1 <= value <= limit:
            raise traitlets.TraitError(f"r: must be from 1 to {rank_limit_text(self.d, self.k, self.rmax)}, "
                                       f"got {value:,}")
        return value

    @traitlets.observe("d", "k", "square", "rmax")
    def _keep_consistent(self, change: dict) -> None:
        """As the page does: square keeps k = d, and r follows a smaller d, k or rmax down."""
        with self.hold_trait_notifications():
            if self.square and self.k != self.d:
                if change["name"] == "k":
                    self.d = self.k
                else:
                    self.k = self.d
            limit = rank_limit(self.d, self.k, self.rmax)
            if self.r > limit:
                self.r = limit


__all__ = ["Explorer"]
