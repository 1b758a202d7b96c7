"""Keep the pages working where the browser refuses them storage.

NiceGUI's client reads ``window.sessionStorage`` at start-up (its tab id). A browser that blocks third-party storage
(Chrome's "block third-party cookies", Brave, a locked-down school profile) throws a SecurityError on that read when
the page sits in an iframe of another site (a course page on an LMS embedding a served loralens page), and the page
never connects. This script, placed in every page's head before NiceGUI's own, replaces an unusable sessionStorage with
one kept in memory for the life of the page, so the page works. localStorage is left as the browser gives it: the
Lessons page's own code handles a refusal and tells the student that progress lasts only until the page is closed.
"""

from __future__ import annotations

SCRIPT = """<script>
(function () {
  function memoryStorage() {
    var items = new Map();
    return {
      get length() { return items.size; },
      key: function (i) { return Array.from(items.keys())[i] ?? null; },
      getItem: function (k) { k = String(k); return items.has(k) ? items.get(k) : null; },
      setItem: function (k, v) { items.set(String(k), String(v)); },
      removeItem: function (k) { items.delete(String(k)); },
      clear: function () { items.clear(); },
    };
  }
  // NiceGUI reads and writes it as an object (sessionStorage.__nicegui_tab_id = ...): a Proxy keeps both ways working
  function asObject(storage) {
    return new Proxy(storage, {
      get: function (t, k) { return k in t ? t[k] : (t.getItem(k) ?? undefined); },
      set: function (t, k, v) { t.setItem(k, v); return true; },
    });
  }
  try {
    window.sessionStorage.setItem('__loralens_probe', '1');
    window.sessionStorage.removeItem('__loralens_probe');
  } catch (refused) {
    try { Object.defineProperty(window, 'sessionStorage', { value: asObject(memoryStorage()), configurable: true }); }
    catch (e) {}
  }
})();
</script>"""


def install() -> None:
    """Add the script to the head of every page, once (register_pages runs again in each test that resets NiceGUI)."""
    from nicegui import Client, ui

    if SCRIPT not in Client.shared_head_html:
        ui.add_head_html(SCRIPT, shared=True)
