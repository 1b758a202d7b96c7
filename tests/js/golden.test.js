// The browser Explorer against Python, its oracle: every record of tests/fixtures/explorer_golden.json (written by
// scripts/generate_explorer_golden.py from loralens' Python view) must come out of explorer.js exactly.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const X = require('../../src/loralens/web/explorer.js');
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'explorer_golden.json'), 'utf8'));

/** The golden record's compact diagram (see diagram_record in the script). */
function diagramRecord(layout) {
  return {
    size: [layout.width, layout.height],
    rects: layout.rects.map((r) => [r.x, r.y, r.w, r.h]),
    labels: layout.labels.map((l) => [l.text, l.x, l.y]),
    clamped: layout.clamped,
    note: layout.note,
  };
}

function viewRecord(state) {
  const view = X.computeView(state);
  return { ...view, diagram: diagramRecord(view.diagram) };
}

test('the fixture holds a few hundred states, the queries and the formatter cases', () => {
  assert.ok(golden.states.length >= 300, `${golden.states.length} states`);
  assert.ok(golden.queries.length >= 40);
  assert.ok(golden.formats.length >= 300);
});

test('every state: every number and string of the view equals Python\'s', () => {
  const failures = [];
  for (const { state, view } of golden.states) {
    const got = viewRecord(state);
    for (const key of Object.keys(view)) {
      try { assert.deepStrictEqual(got[key], view[key]); } catch (error) {
        failures.push(`${JSON.stringify(state)} ${key}:\n  js     ${JSON.stringify(got[key])}\n  python ${JSON.stringify(view[key])}`);
      }
    }
    assert.deepStrictEqual(Object.keys(got).sort(), Object.keys(view).sort());
  }
  assert.equal(failures.length, 0, failures.slice(0, 8).join('\n'));
});

test('every URL query: the same state and the same messages as the server would give', () => {
  for (const { query, state, messages } of golden.queries) {
    const got = X.stateFromQuery(query);
    assert.deepStrictEqual({ state: got.state, messages: got.messages }, { state, messages }, JSON.stringify(query));
  }
});

const FORMATTERS = {
  significant: (v, d) => X.significant(v, d),
  format_g: (v) => X.formatG(v),
  fixed1: (v) => X.group(X.fixed(v, 1)),
  share_percent: (n, d, digits) => X.sharePercent(n, d, digits),
  percent: (n, d, digits) => X.percent(n, d, digits),
  short_count: (n) => X.shortCount(n),
  binary_bytes: (n) => X.binaryBytes(n),
  py_repr: (t) => X.pyRepr(t),
};

test('every formatter case, ties included, is written as CPython writes it', () => {
  const failures = [];
  for (const { fn, args, out } of golden.formats) {
    const got = FORMATTERS[fn](...args);
    if (got !== out) failures.push(`${fn}(${JSON.stringify(args)}): js ${JSON.stringify(got)}, python ${JSON.stringify(out)}`);
  }
  assert.equal(failures.length, 0, failures.join('\n'));
});

test('the presets are Python\'s', () => {
  assert.deepStrictEqual(X.PRESETS, golden.presets);
});
