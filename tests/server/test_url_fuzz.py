"""No URL value ever yields a non-page response: hypothesis over every page's parameters (its schema, embed, and
names it does not read) against the real server. Each answer is 200, the page itself (its title and NiceGUI's
client), and shows no traceback or error JSON."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loralens.app.explorer.view import SCHEMA as EXPLORER
from loralens.app.inspector.page import SCHEMA as INSPECTOR
from loralens.app.labs.view import schema as lab_schema
from loralens.app.lessons.view import SCHEMA as LESSONS
from loralens.app.models.view import SCHEMA as MODELS
from loralens.app.url_state import EMBED
from loralens.core.labs import LABS

from .conftest import Server

PAGES = {
    "/": ("Explorer", [p.name for p in EXPLORER]),
    "/models": ("Models", [p.name for p in MODELS]),
    "/labs": ("Labs", sorted({p.name for lab in LABS for p in lab_schema(lab)})),
    "/lessons": ("Lessons", [p.name for p in LESSONS]),
    "/inspector": ("Inspector", [p.name for p in INSPECTOR]),
}
NASTY = st.one_of(
    st.sampled_from(["", " ", "-1", "0", "1", "NaN", "nan", "inf", "-inf", "1e309", "-1e309", "8.5", "1e-400",
                     "true", "false", "yes", "2", "9" * 400, "0x10", "1_000", "١٢", "<script>alert(1)</script>",
                     "%00", "\x00", "../../etc/passwd", "/root/.ssh", "fit", "merge", "teacher", "all-linear",
                     "q_proj,v_proj", "llama-2-7b", "a" * 5000]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=30),
)


@st.composite
def page_urls(draw: st.DrawFn) -> tuple[str, str]:
    path = draw(st.sampled_from(sorted(PAGES)))
    names = PAGES[path][1] + [EMBED.name]
    pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(names), st.text(max_size=8)), NASTY), max_size=6))
    return path, path + ("?" + urlencode(pairs) if pairs else "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=page_urls())
def test_every_url_gives_its_page(server: Server, target: tuple[str, str]) -> None:
    path, url = target
    status, headers, body = server.request("GET", url)
    text = body.decode("utf-8", "replace")
    assert status == 200, (url, status, text[:300])
    assert headers["content-type"].startswith("text/html")
    assert f"{PAGES[path][0]}" in text and "· loralens" in text  # the page's own title
    assert "client_id" in text  # a NiceGUI page that a browser can connect to and use
    assert "Traceback" not in text and '"detail"' not in text
