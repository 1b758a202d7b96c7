"""What a person would see as broken, measured in the browser: the page wider than the screen (and which element
sticks out), values cut off in their boxes, text drawn over other text, and chart labels that overlap or fall
off the chart (ECharts draws on a canvas, so its text is read from the chart's own scene graph)."""

from __future__ import annotations

import re
from typing import Any

# Elements that stick out of their parent and past the right edge of the window (the culprits, not every
# ancestor that grows with them); content inside a scrolling box (a table that scrolls in its card) is fine.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const clips = (el) => ['hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  const describe = (el) => {
    const id = el.closest('[data-testid]');
    return {tag: el.tagName.toLowerCase(), cls: (el.className && el.className.baseVal === undefined ?
            el.className : '').toString().split(' ').slice(0, 3).join(' '),
            testid: id ? id.getAttribute('data-testid') : '',
            text: (el.innerText || el.value || '').trim().slice(0, 60)};
  };
  const offenders = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || box.right <= width + 1) continue;
    let inside = false;
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (scrolls(a) || clips(a)) { inside = true; break; }
    }
    if (inside) continue;
    const parent = el.parentElement;
    const parentRight = parent ? parent.getBoundingClientRect().right : width;
    if (box.right > parentRight + 1 || !parent || parent === document.body) {
      offenders.push({...describe(el), left: Math.round(box.left), right: Math.round(box.right),
                      width: Math.round(box.width), parentRight: Math.round(parentRight)});
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, offenders: offenders.slice(0, 12)};
}"""

# Text that does not fit its box: a value wider than its input, or a label cut off by overflow or an ellipsis.
CLIPPED_JS = """() => {
  const found = [];
  const visible = (el) => el.offsetParent !== null && getComputedStyle(el).visibility !== 'hidden';
  for (const input of document.querySelectorAll('input, textarea')) {
    if (!visible(input) || ['radio', 'checkbox', 'hidden'].includes(input.type)) continue;
    if (input.clientWidth < 4 || getComputedStyle(input).opacity === '0') continue;  // a select's focus target
    if (input.scrollWidth > input.clientWidth + 1) {
      const id = input.closest('[data-testid]') || input;
      found.push({kind: 'value', testid: id.getAttribute('data-testid') || '', text: input.value,
                  box: input.clientWidth, needs: input.scrollWidth});
    }
  }
  for (const el of document.body.querySelectorAll('*')) {
    if (!visible(el) || !el.childNodes.length) continue;
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText) continue;
    const style = getComputedStyle(el);
    const cut = ['hidden', 'clip'].includes(style.overflowX) || style.textOverflow === 'ellipsis';
    if (cut && el.scrollWidth > el.clientWidth + 1) {
      const id = el.closest('[data-testid]');
      found.push({kind: 'text', testid: id ? id.getAttribute('data-testid') : '', text: el.textContent.trim()
                  .slice(0, 60), box: el.clientWidth, needs: el.scrollWidth});
    }
  }
  return found.slice(0, 12);
}"""

# Pairs of text runs (each line box of each text node) that overlap on screen by more than a sliver (a quarter of
# the line's height vertically: what two tightly set lines of one label share).
TEXT_OVERLAP_JS = """() => {
  const runs = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || el.offsetParent === null) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || Number(style.opacity) === 0) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width > 1 && r.height > 1) runs.push({text: text.slice(0, 40), el, r});
    }
  }
  const pairs = [];
  for (let i = 0; i < runs.length && pairs.length < 12; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const a = runs[i].r, b = runs[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      // a line box is taller than its glyphs: lines set tightly (a two-line label) share a few pixels
      const sliver = Math.max(2, 0.25 * Math.min(a.height, b.height));
      if (w > 2 && h > sliver && runs[i].el !== runs[j].el) {
        pairs.push([runs[i].text, runs[j].text, Math.round(w), Math.round(h)]);
      }
    }
  }
  return pairs;
}"""

# Every text run ECharts drew in each chart: its box, and the chart's size. Read from zrender's display list.
CHART_TEXT_JS = """() => [...document.querySelectorAll('.nicegui-echart')].map((el) => {
  const vue = getElement(el);
  const chart = vue && vue.chart;
  if (!chart) return null;
  const zr = chart.getZr();
  const texts = [];
  for (const d of zr.storage.getDisplayList(true)) {
    if (d.type !== 'tspan' || d.invisible || d.ignore || !d.style || !String(d.style.text || '').trim()) continue;
    if (d.style.opacity === 0) continue;
    // zrender measures a line's height as the width of '国', which is wrong where no CJK font is installed:
    // take the height from the font size instead, centred where zrender centres the line
    const local = d.getBoundingRect().clone();
    const size = Number((String(d.style.font || '').match(/([0-9.]+)px/) || [0, 12])[1]);
    local.y += local.height / 2 - size * 0.6;
    local.height = size * 1.2;
    const m = d.getComputedTransform();
    if (m) local.applyTransform(m);
    let box = local;
    for (const clip of d.__clipPaths || []) {  // a scrolling legend clips its items
      const c = clip.getBoundingRect().clone();
      const cm = clip.getComputedTransform();
      if (cm) c.applyTransform(cm);
      const x1 = Math.max(box.x, c.x), y1 = Math.max(box.y, c.y);
      const x2 = Math.min(box.x + box.width, c.x + c.width), y2 = Math.min(box.y + box.height, c.y + c.height);
      box = {x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1)};
    }
    if (box.width < 1 || box.height < 1) continue;  // clipped away
    texts.push({text: String(d.style.text), x: box.x, y: box.y, w: box.width, h: box.height});
  }
  const title = (chart.getOption().title || [{}])[0].text || '';
  return {title, width: zr.getWidth(), height: zr.getHeight(), texts,
          testid: (el.closest('[data-testid]') || el).getAttribute('data-testid') || ''};
}).filter(Boolean)"""


def chart_problems(charts: list[dict[str, Any]], slack: float = 1.0) -> list[str]:
    """Chart labels that fall off the chart or overlap another label (by more than ``slack`` px each way)."""
    problems = []
    for chart in charts:
        name = chart["title"] or chart["testid"] or "a chart"
        texts = chart["texts"]
        pages = [t["text"] for t in texts if re.fullmatch(r"\d+/\d+", t["text"])]
        if pages:
            problems.append(f"{name!r}: the legend does not fit: its items are on {pages[0].split('/')[1]} pages "
                            "behind arrows")
        for t in texts:
            if t["x"] < -slack or t["y"] < -slack or t["x"] + t["w"] > chart["width"] + slack or \
                    t["y"] + t["h"] > chart["height"] + slack:
                problems.append(f"{name!r}: label {t['text']!r} is cut off at the chart's edge (box x={t['x']:.0f}"
                                f"..{t['x'] + t['w']:.0f}, y={t['y']:.0f}..{t['y'] + t['h']:.0f} in a "
                                f"{chart['width']}×{chart['height']} chart)")
        for i, a in enumerate(texts):
            for b in texts[i + 1:]:
                w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
                h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
                if w > slack and h > slack:
                    problems.append(f"{name!r}: labels {a['text']!r} and {b['text']!r} overlap by {w:.0f}×{h:.0f} px")
    return problems


def page_problems(page: Any, charts: bool = True) -> list[str]:  # a Playwright page
    """Everything wrong with the layout of the page as it is now, one line each (empty when it is right)."""
    problems = []
    overflow = page.evaluate(OVERFLOW_JS)
    if overflow["scrollWidth"] > overflow["width"] + 1 or overflow["offenders"]:
        culprits = "; ".join(
            f"<{o['tag']} class='{o['cls']}'> in [{o['testid']}] {o['text']!r} spans x={o['left']}..{o['right']} "
            f"(parent ends at {o['parentRight']})" for o in overflow["offenders"]) or "no single element found"
        problems.append(f"page is {overflow['scrollWidth']} px wide in a {overflow['width']} px window: {culprits}")
    for item in page.evaluate(CLIPPED_JS):
        problems.append(f"{item['kind']} {item['text']!r} in [{item['testid']}] is cut off: it needs "
                        f"{item['needs']} px, its box has {item['box']}")
    for a, b, w, h in page.evaluate(TEXT_OVERLAP_JS):
        problems.append(f"text {a!r} overlaps {b!r} by {w}×{h} px")
    if charts:
        problems += chart_problems(page.evaluate(CHART_TEXT_JS))
    return problems


__all__ = ["CHART_TEXT_JS", "CLIPPED_JS", "OVERFLOW_JS", "TEXT_OVERLAP_JS", "chart_problems", "page_problems"]
