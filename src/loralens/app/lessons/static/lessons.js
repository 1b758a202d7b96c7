// Lesson progress for the Lessons page, kept in this browser's localStorage (all tabs of this site).
// Loaded as a file (no inline script or handler). The page calls load/record/reset; another tab's change
// arrives as a "storage" event and is passed to the page with NiceGUI's emitEvent.
(function () {
  "use strict";
  var KEY = "loralens.lessons.v1";
  var KINDS = ["done", "seen"];

  function keys(value) {
    return Array.isArray(value) ? value.filter(function (k) { return typeof k === "string"; }) : [];
  }

  // the stored state, or null when this browser keeps no storage (blocked, private mode quota)
  function load() {
    try {
      var raw = window.localStorage.getItem(KEY);
      var data = raw ? JSON.parse(raw) : {};
      return { done: keys(data && data.done), seen: keys(data && data.seen) };
    } catch (error) {
      return null;
    }
  }

  function save(state) {
    try {
      window.localStorage.setItem(KEY, JSON.stringify({ v: 1, done: state.done, seen: state.seen }));
      return state;
    } catch (error) {
      return null;
    }
  }

  // add one question key to "done" or "seen"; read first, so that another tab's progress is kept
  function record(key, kind) {
    var state = load();
    if (state === null || KINDS.indexOf(kind) < 0 || typeof key !== "string") return state;
    if (state[kind].indexOf(key) < 0) state[kind].push(key);
    return save(state);
  }

  function reset() {
    try {
      window.localStorage.removeItem(KEY);
    } catch (error) {
      return null;
    }
    return { done: [], seen: [] };
  }

  window.addEventListener("storage", function (event) {
    if ((event.key === KEY || event.key === null) && typeof window.emitEvent === "function") {
      window.emitEvent("loralens_lessons_progress", load());
    }
  });

  window.loralensLessons = { load: load, record: record, reset: reset };
})();
