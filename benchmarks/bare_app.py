"""The floor of this stack: a bare NiceGUI page with one slider and one label (same element ids as the Explorer).

Run by bench_explorer.py beside the real app: `python benchmarks/bare_app.py PORT [EXTRA]`, where EXTRA static
labels are added to show what the size of the page's element tree alone costs each update.
"""

import sys

from nicegui import ui


@ui.page("/")
def page() -> None:
    label = ui.label("65,536").props('data-testid="lora-params"')
    ui.slider(min=1, max=4096, step=1, value=8, on_change=lambda e: label.set_text(f"{int(e.value) * 8192:,}")).props(
        'data-testid="rank"'
    )
    for i in range(EXTRA):
        ui.label(f"static label {i}")


port = int(sys.argv[1])
EXTRA = int(sys.argv[2]) if len(sys.argv) > 2 else 0
print(f"bare page at http://127.0.0.1:{port}/", flush=True)
ui.run(host="127.0.0.1", port=port, reload=False, show=False, show_welcome_message=False)
