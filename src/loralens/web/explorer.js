/* loralens Explorer: LoRA's W + B·A = W′, its exact counts and charts, computed and drawn in the browser.
 *
 * One dependency-free classic script, no build step. It runs three ways: served by `loralens serve` (a static
 * file of the app), inlined into the MicroSim that `loralens export microsim` writes (file:// blocks ES-module
 * imports, so this is a classic script), and as the notebook widget's front end (anywidget appends an ES-module
 * `export default` to this text). It defines one global, `LoraExplorer`, and `module.exports` under Node.
 *
 * Python is the oracle: loralens.app.explorer.view computes the same numbers and strings, and the golden vectors
 * it writes (tests/fixtures/explorer_golden.json) are checked against this file by `node --test tests/js/` and
 * again in Chromium. Numbers are written as CPython writes them: exact decimal rounding of the binary value,
 * ties to even (JS's toFixed does not round the exact value), thousands separators, `g` formatting.
 *
 * Over 400 lines on purpose: it is the one file all three hosts load (no bundler may join several, and file://
 * cannot import), so its sections below (exact text, the view, the diagram, the charts, the matrices) stay here.
 */
(function (root) {
  'use strict';

  // ------------------------------------------------------------------------------------ exact decimal text

  /** x (finite) as [negative, mantissa: BigInt, exponent] with |x| = mantissa * 2**exponent exactly. */
  function decompose(x) {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, x);
    const high = view.getUint32(0), low = view.getUint32(4);
    const negative = high >>> 31 === 1;
    const bits = (high >>> 20) & 0x7ff;
    let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
    if (bits === 0) return [negative, mantissa, -1074]; // subnormal (or zero)
    mantissa |= 1n << 52n;
    return [negative, mantissa, bits - 1075];
  }

  /** numerator / denominator rounded to an integer, ties to even (both BigInt, denominator > 0). */
  function divideHalfEven(numerator, denominator) {
    const quotient = numerator / denominator, twice = 2n * (numerator % denominator);
    if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) return quotient + 1n;
    return quotient;
  }

  /** Python's f"{x:.{n}f}": the exact binary value of x rounded to n decimals, ties to even. */
  function fixed(x, n) {
    if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
    const [negative, mantissa, exponent] = decompose(x);
    let digits;
    if (exponent >= 0) digits = (mantissa << BigInt(exponent)) * 10n ** BigInt(n);
    else digits = divideHalfEven(mantissa * 10n ** BigInt(n), 1n << BigInt(-exponent));
    let text = digits.toString().padStart(n + 1, '0');
    if (n > 0) text = text.slice(0, -n) + '.' + text.slice(-n);
    return (negative ? '-' : '') + text;
  }

  /** Thousands separators on the integer part of a decimal text ('1234567.5' -> '1,234,567.5'). */
  function group(text) {
    const sign = text.startsWith('-') ? '-' : '';
    const body = sign ? text.slice(1) : text;
    const dot = body.indexOf('.');
    const whole = dot < 0 ? body : body.slice(0, dot), rest = dot < 0 ? '' : body.slice(dot);
    return sign + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + rest;
  }

  /** An exact integer (Number or BigInt) with thousands separators: Python's f"{n:,}". */
  function intText(n) {
    if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError(`not an exact integer: ${n}`);
    return group(BigInt(n).toString());
  }

  /** The product a·b exactly: a Number while it is below 2**53, else a BigInt. */
  function mul(a, b) {
    const p = a * b;
    return Number.isSafeInteger(p) ? p : BigInt(a) * BigInt(b);
  }

  /** |x| rounded to `sig` significant digits: [digit string, decimal exponent of the first digit]. */
  function roundSignificant(x, sig) {
    const [, mantissa, exponent] = decompose(Math.abs(x));
    // |x| = num / den exactly
    let num = exponent >= 0 ? mantissa << BigInt(exponent) : mantissa;
    let den = exponent >= 0 ? 1n : 1n << BigInt(-exponent);
    let e = Math.floor(Math.log10(Math.abs(x))); // a guess, corrected exactly below
    const pow = (k) => 10n ** BigInt(Math.abs(k));
    const below = (k) => (k >= 0 ? num < pow(k) * den : num * pow(k) < den); // |x| < 10**k
    while (below(e)) e -= 1;
    while (!below(e + 1)) e += 1;
    const shift = sig - 1 - e; // scaled = |x| * 10**shift, rounded to an integer
    let scaled = shift >= 0 ? divideHalfEven(num * pow(shift), den) : divideHalfEven(num, den * pow(shift));
    if (scaled === pow(sig)) { scaled /= 10n; e += 1; }
    return [scaled.toString(), e];
  }

  /** Python's f"{x:g}" (6 significant digits, trailing zeros dropped, exponent form outside 1e-4..1e6). */
  function formatG(x, precision = 6) {
    if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
    const sign = x < 0 || Object.is(x, -0) ? '-' : '';
    if (x === 0) return sign + '0';
    const [digits, e] = roundSignificant(x, precision);
    const strip = (t) => (t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t);
    if (e < -4 || e >= precision) {
      const mantissa = strip(digits[0] + '.' + digits.slice(1));
      return `${sign}${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
    }
    let text;
    if (e >= 0) text = digits.slice(0, e + 1).padEnd(e + 1, '0') + '.' + digits.slice(e + 1);
    else text = '0.' + '0'.repeat(-e - 1) + digits;
    return sign + strip(text);
  }

  /** core.units.significant: value to `digits` significant digits as plain decimal text (round() then format). */
  function significant(value, digits = 2) {
    if (value === 0) return '0';
    let decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(value))));
    const rounded = Number(fixed(value, decimals)); // CPython's round(value, decimals): the double nearest
    if (rounded) decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(rounded))));
    return fixed(rounded, decimals);
  }

  /** core.units.percent for the exact share num/den (integers). */
  function percent(num, den, digits = 2) {
    return significant((Number(num) / Number(den)) * 100, digits) + '%';
  }

  /** core.units.share_percent: like percent, never '0%' or '100%' unless the share is exactly 0 or 1. */
  function sharePercent(num, den, digits = 2) {
    const value = (Number(num) / Number(den)) * 100;
    let text = significant(value, digits);
    while (digits < 17 && atEnd(text) && !equalsDecimal(num, den, text)) {
      digits += 1;
      text = significant(value, digits);
    }
    return text + '%';
  }

  function atEnd(text) {
    return /^-?0(\.0*)?$/.test(text) || /^100(\.0*)?$/.test(text);
  }

  /** 100·num/den == the decimal `text`, exactly. */
  function equalsDecimal(num, den, text) {
    const [whole, fraction = ''] = text.replace('-', '').split('.');
    const value = BigInt(whole + fraction), scale = 10n ** BigInt(fraction.length);
    return BigInt(num) * 100n * scale === value * BigInt(den) && !text.startsWith('-');
  }

  /** core.units.short_count: 16777216 -> '16.8M'. */
  function shortCount(n) {
    const [digits, e] = roundSignificant(n || 1, 3);
    const rounded = n === 0 ? 0 : Number(`${digits[0]}.${digits.slice(1)}e${e}`);
    for (const [size, unit] of [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']]) {
      if (Math.abs(rounded) >= size) return significant(n / size, 3) + unit;
    }
    return formatG(n);
  }

  /** core.units.binary_bytes: 37748736 -> '36.0 MiB'. */
  function binaryBytes(n) {
    for (const [size, unit] of [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']]) {
      if (Math.abs(n) >= size) return `${group(fixed(n / size, 1))} ${unit}`;
    }
    return `${fixed(n, 0)} B`;
  }

  const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

  /** Python's repr() of a str: how a bad URL value is quoted in a message. */
  function pyRepr(text) {
    const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
    let out = quote;
    for (const ch of text) {
      const code = ch.codePointAt(0);
      if (ch === quote || ch === '\\') out += '\\' + ch;
      else if (ch === '\t') out += '\\t';
      else if (ch === '\n') out += '\\n';
      else if (ch === '\r') out += '\\r';
      else if (ch !== ' ' && NOT_PRINTABLE.test(ch)) {
        const hex = code.toString(16);
        out += code < 0x100 ? '\\x' + hex.padStart(2, '0') : code < 0x10000 ? '\\u' + hex.padStart(4, '0')
          : '\\U' + hex.padStart(8, '0');
      } else out += ch;
    }
    return out + quote;
  }

  /** round() of a float in Python: to the nearest integer, ties to even. */
  function roundHalfEven(x) {
    const floor = Math.floor(x), diff = x - floor;
    if (diff > 0.5 || (diff === 0.5 && floor % 2 !== 0)) return floor + 1;
    return floor + 0; // + 0 turns -0 into 0
  }

  // ------------------------------------------------------------------------------------ the URL schema
  // app/url_state.py and the Explorer's SCHEMA in app/explorer/view.py, with the same messages.

  const MAX_DIM = 65536;
  const SCHEMA = [
    { name: 'd', kind: 'int', fallback: 4096, low: 1, high: MAX_DIM },
    { name: 'k', kind: 'int', fallback: 4096, low: 1, high: MAX_DIM },
    { name: 'r', kind: 'int', fallback: 8, low: 1, high: MAX_DIM },
    { name: 'alpha', kind: 'float', fallback: 16, low: 0.001, high: 100000 },
    { name: 'rslora', kind: 'bool', fallback: false },
    { name: 'square', kind: 'bool', fallback: true },
    { name: 'target', kind: 'float', fallback: 99, low: 1, high: 99.999 },
    { name: 'rmax', kind: 'int', fallback: 0, low: 0, high: MAX_DIM },
    { name: 'answers', kind: 'bool', fallback: true },
    { name: 'trained', kind: 'bool', fallback: false },
  ];
  const EMBED = { name: 'embed', kind: 'bool', fallback: false };
  const TRUE_WORDS = ['1', 'true', 'yes', 'on'], FALSE_WORDS = ['0', 'false', 'no', 'off'];
  // what str.strip() removes (str.isspace), which is not quite what String.prototype.trim() removes
  const PY_SPACE = '[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
  const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');
  // float()'s grammar: digits with single underscores between them, optional fraction and exponent, inf, nan
  const PY_FLOAT = /^[+-]?(?:(?:\d(?:_?\d)*)?\.\d(?:_?\d)*|\d(?:_?\d)*\.?)(?:[eE][+-]?\d(?:_?\d)*)?$/;
  const PY_SPECIAL = /^[+-]?(?:inf|infinity|nan)$/i;

  function pyFloat(text) {
    if (PY_SPECIAL.test(text)) return /nan/i.test(text) ? NaN : text.startsWith('-') ? -Infinity : Infinity;
    return PY_FLOAT.test(text) ? Number(text.replace(/_/g, '')) : NaN;
  }

  function clampNote(param, value) {
    if (param.low !== undefined && value < param.low) return [param.low, `must be at least ${formatG(param.low)}; using ${formatG(param.low)}`];
    if (param.high !== undefined && value > param.high) return [param.high, `must be at most ${formatG(param.high)}; using ${formatG(param.high)}`];
    return [value, null];
  }

  /** url_state.parse_value: [value, message or null]. */
  function parseValue(param, raw) {
    const text = String(raw).replace(PY_STRIP, '');
    if (param.kind === 'bool') {
      const word = text.toLowerCase();
      if (TRUE_WORDS.includes(word)) return [true, null];
      if (FALSE_WORDS.includes(word)) return [false, null];
      return [param.fallback, `expected true or false, got ${pyRepr(text)}; using ${param.fallback}`];
    }
    const number = pyFloat(text);
    if (!Number.isFinite(number)) return [param.fallback, `expected a number, got ${pyRepr(text)}; using ${formatG(param.fallback)}`];
    if (param.kind === 'int') {
      const rounded = roundHalfEven(number);
      let [clamped, note] = clampNote(param, rounded);
      if (note === null && rounded !== number) note = `must be a whole number; using ${clamped}`;
      return [clamped + 0, note];
    }
    return clampNote(param, number);
  }

  /** url_state.read_query + view.state_from_query: {state, embed, messages} from a query (object of strings). */
  function stateFromQuery(query) {
    const has = (name) => Object.prototype.hasOwnProperty.call(query, name);
    const values = {}, messages = [];
    for (const param of [...SCHEMA, EMBED]) {
      if (!has(param.name)) { values[param.name] = param.fallback; continue; }
      const [value, note] = parseValue(param, query[param.name]);
      values[param.name] = value;
      if (note) messages.push(`URL parameter ${param.name}: ${note}`);
    }
    const names = [...SCHEMA, EMBED].map((p) => p.name);
    for (const name of Object.keys(query)) {
      if (!names.includes(name)) messages.push(`URL parameter ${name}: not used by this page (it reads ${names.join(', ')}); ignored`);
    }
    const embed = values.embed;
    delete values.embed;
    if (values.square && has('k') && has('d') && values.k !== values.d) values.square = false;
    else if (values.square && !has('k')) values.k = values.d;
    else if (values.square && !has('d')) values.d = values.k;
    const maxR = rankLimit(values);
    if (values.r > maxR) {
      messages.push(`URL parameter r: must be at most ${rankLimitText(values)}; using ${intText(maxR)}`);
      values.r = maxR;
    }
    return { state: values, embed, messages };
  }

  /** A query object from a location.search string ('?d=64&r=4'); the last of repeated names wins. */
  function queryFromSearch(search) {
    const query = {};
    for (const [name, value] of new URLSearchParams(search)) query[name] = value;
    return query;
  }

  function rankLimit(s) {
    return s.rmax <= 0 ? Math.min(s.d, s.k) : Math.min(s.rmax, s.d, s.k);
  }

  function rankLimitText(s) {
    const limit = rankLimit(s);
    return s.rmax > 0 && s.rmax < Math.min(s.d, s.k) ? `rmax = ${intText(limit)}` : `min(d, k) = ${intText(limit)}`;
  }

  /** url_state.format_value. */
  function formatValue(value) {
    if (typeof value === 'boolean') return value ? 'true' : 'false';
    return String(value); // integers print without '.0'; floats in range print as Python's repr
  }

  function toQuery(state) {
    return SCHEMA.map((p) => `${p.name}=${encodeURIComponent(formatValue(state[p.name]))}`).join('&');
  }

  function pageUrl(path, query, embed) {
    const parts = [query, embed ? 'embed=1' : ''].filter(Boolean);
    return path + (parts.length ? '?' + parts.join('&') : '');
  }

  // ------------------------------------------------------------------------------------ the view (view.py)

  const PRESETS = [
    ['768²  (BERT-base, GPT-2)', 768, 768], ['1024²', 1024, 1024], ['4096²  (LLaMA-7B attn)', 4096, 4096],
    ['8192²  (LLaMA-70B attn)', 8192, 8192], ['12288²  (GPT-3 attn)', 12288, 12288],
    ['11008×4096  (LLaMA-7B up)', 11008, 4096], ['4096×11008  (LLaMA-7B down)', 4096, 11008],
    ['64²  (see the matrices)', 64, 64],
  ];
  const SMALL_MATRIX_LIMIT = 64;
  const HIDDEN_ANSWER = 'The largest rank for your target is hidden during the lesson: find it with the slider.';

  function presetIndex(d, k) {
    const i = PRESETS.findIndex(([, pd, pk]) => pd === d && pk === k);
    return i < 0 ? null : i;
  }

  /** core.counting: the exact counts, the break-even rank and the largest rank for the savings target. */
  function countLayer(d, k, r, target) {
    const full = mul(d, k), lora = mul(r, d + k);
    // max_rank_for_savings reads the target through its decimal text (Python's repr of target / 100)
    const [whole, fraction = ''] = String(target / 100).split('.');
    const scale = 10n ** BigInt(fraction.length), saved = BigInt(whole + fraction);
    const maxRank = Number(((scale - saved) * BigInt(d) * BigInt(k)) / (BigInt(d + k) * scale));
    return { d, k, r, full, lora, maxRank };
  }

  function scalingOf(s) {
    return s.rslora ? s.alpha / Math.sqrt(s.r) : s.alpha / s.r;
  }

  function breakEvenText(d, k) {
    const num = mul(d, k), den = d + k;
    return Number(num) % den === 0 ? intText(Number(num) / den) : group(fixed(Number(num) / den, 1));
  }

  /** Every number and string of the Explorer for a valid state: view.build_view, as the golden record. */
  function computeView(s) {
    const c = countLayer(s.d, s.k, s.r, s.target);
    const sc = scalingOf(s);
    const be = breakEvenText(s.d, s.k);
    const saves = c.lora < c.full;
    const ratio = sharePercent(c.lora, c.full);
    const rule = s.rslora ? `${formatG(s.alpha)}/√${s.r}` : `${formatG(s.alpha)}/${s.r}`;
    return {
      rank_max: rankLimit(s),
      scaling: sc,
      full_text: intText(c.full),
      lora_text: intText(c.lora),
      ratio_text: ratio,
      savings_text: saves ? `saves ${sharePercent(c.full - c.lora, c.full, 3)}` : 'saves nothing',
      break_even_text: be,
      warning: warningText(s, c, be),
      max_rank_text: maxRankText(s, c),
      formula_full: `full: d·k = ${intText(s.d)} × ${intText(s.k)} = ${intText(c.full)}`,
      formula_lora: `LoRA: r(d+k) = ${intText(s.r)} × (${intText(s.d)} + ${intText(s.k)}) = ${intText(c.lora)}`,
      formula_merge: `W′ = W + (${rule})·B·A = W + ${significant(sc, 3)}·B·A`,
      diagram: diagramLayout(s.d, s.k, s.r, sc),
      bars: bars(c),
      growth_d: growthWithD(c),
      growth_r: growthWithR(c),
      example_rows: [
        ['Full fine-tuning', `d × k = ${intText(s.d)} × ${intText(s.k)}`, `${intText(c.full)} (${shortCount(c.full)})`],
        [`LoRA (r = ${intText(s.r)})`, `r(d + k) = ${intText(s.r)} × (${intText(s.d)} + ${intText(s.k)})`,
          `${intText(c.lora)} (${shortCount(c.lora)})`],
        ['LoRA / full', 'r(d + k) / dk', ratio],
      ],
      worked_example: `A ${intText(s.d)} × ${intText(s.k)} weight has ${intText(c.full)} parameters. A rank-${intText(s.r)} ` +
        `LoRA trains B (${intText(s.d)} × ${intText(s.r)}) and A (${intText(s.r)} × ${intText(s.k)}): ${intText(c.lora)} ` +
        `parameters, ${ratio} of full fine-tuning. The seed lesson's case is d = k = 4096, r = 8: 16,777,216 against ` +
        '65,536 (0.39%).',
      benefits: benefits(c),
      small: s.d <= SMALL_MATRIX_LIMIT && s.k <= SMALL_MATRIX_LIMIT,
      matrices_hint: `Heatmaps of the actual values are drawn for d, k ≤ ${SMALL_MATRIX_LIMIT} (this layer has ${intText(c.full)} entries).`,
      preset: presetIndex(s.d, s.k),
      url: pageUrl('/', toQuery(s), false),
      url_embed: pageUrl('/', toQuery(s), true),
      models_url: modelsUrl(s, false),
      models_url_embed: modelsUrl(s, true),
    };
  }

  function modelsUrl(s, embed) {
    return pageUrl('/models', `model=llama-2-7b&r=${s.r}&alpha=${encodeURIComponent(formatValue(s.alpha))}`, embed);
  }

  function warningText(s, c, be) {
    if (c.lora < c.full) return null;
    const extra = c.lora - c.full;
    if (extra > 0) {
      return `r = ${intText(s.r)} is at or past the break-even rank dk/(d+k) = ${be}: LoRA trains ${intText(extra)} ` +
        `more parameters than full fine-tuning (${sharePercent(c.lora, c.full)} of it). Use r < ${be}.`;
    }
    return `r = ${intText(s.r)} is exactly the break-even rank dk/(d+k) = ${be}: LoRA trains as many parameters ` +
      'as full fine-tuning and saves nothing.';
  }

  function maxRankText(s, c) {
    if (!s.answers) return HIDDEN_ANSWER;
    const target = `${formatG(s.target)}%`;
    if (c.maxRank >= 1) {
      return `Largest rank that saves at least ${target}: r = ${intText(c.maxRank)} (${intText(c.d + c.k)} × ` +
        `${intText(c.maxRank)} = ${intText(mul(c.maxRank, c.d + c.k))} parameters).`;
    }
    return `No rank saves ${target} on a ${intText(c.d)}×${intText(c.k)} layer: even r = 1 trains ` +
      `${sharePercent(c.d + c.k, c.full)}.`;
  }

  function benefits(c) {
    const perParam = 16, saved = (c.full - c.lora) * perParam;
    return [
      ['Memory', `Gradients and AdamW states exist only for trained weights: ${binaryBytes(c.lora * perParam)} ` +
        `instead of ${binaryBytes(c.full * perParam)} for this layer (16 bytes per trained weight), ` +
        (saved > 0 ? `${binaryBytes(saved)} less.` : 'no saving at this rank.')],
      ['No inference latency', `Merge once, W′ = W + ΔW: the merged layer does exactly the ${intText(c.full)} ` +
        `multiply-adds per token of the original. Unmerged, B(Ax) adds ${intText(c.lora)} (${sharePercent(c.lora, c.full)}).`],
      ['Modular adapters', `One task's adapter for this layer is ${binaryBytes(c.lora * 2)} in bf16 against ` +
        `${binaryBytes(c.full * 2)} for a full copy of W: keep one frozen model and swap small adapters.`],
      ['Stability', 'B starts at zero, so ΔW = 0 and W′ = W before the first step: training starts exactly from the ' +
        'pretrained model and moves only inside a rank-r subspace.'],
    ];
  }

  // ------------------------------------------------------------------------------------ diagram (diagram.py)

  const D = { LONGER: 110, MIN_SIDE: 16, MIN_RANK: 3, LEFT: 26, GAP: 30, BA_GAP: 6, RIGHT: 10, TOP: 24, BOTTOM: 34, ROW: 330, SLOT: 100 };

  function diagramLayout(d, k, r, s) {
    let wW, wH;
    if (d >= k) { wW = Math.max(D.MIN_SIDE, (D.LONGER * k) / d); wH = D.LONGER; }
    else { wW = D.LONGER; wH = Math.max(D.MIN_SIDE, (D.LONGER * d) / k); }
    const bShare = r / k, aShare = r / d;
    let widest = D.ROW / (3 + bShare); // the widest W for which the three slots fit (see diagram.py)
    if (widest < D.SLOT) widest = (D.ROW - 2 * D.SLOT) / (1 + bShare);
    if (wW > widest) { const shrink = widest / wW; wW = wW * shrink; wH = wH * shrink; }
    const bTrue = wW * bShare, aTrue = wH * aShare;
    const tB = Math.max(D.MIN_RANK, bTrue), tA = Math.max(D.MIN_RANK, aTrue);
    // three slots, W | B·A | W', at least SLOT wide so that the titles never overlap; shapes centred in them
    const slotW = Math.max(D.SLOT, wW), slotBA = Math.max(D.SLOT, tB + D.BA_GAP + wW);
    const xSlotBA = D.LEFT + slotW + D.GAP, xSlotM = xSlotBA + slotBA + D.GAP;
    const xW = D.LEFT + (slotW - wW) / 2;
    const xB = xSlotBA + (slotBA - (tB + D.BA_GAP + wW)) / 2, xA = xB + tB + D.BA_GAP;
    const xM = xSlotM + (slotW - wW) / 2;
    const below = D.TOP + wH + 14;
    const L = (text, x, y, cls, anchor = 'middle', rotate = false) => ({ text, x, y, cls, anchor, rotate });
    return {
      width: xSlotM + slotW + D.RIGHT,
      height: D.TOP + wH + D.BOTTOM,
      rects: [
        { name: 'W', x: xW, y: D.TOP, w: wW, h: wH }, { name: 'B', x: xB, y: D.TOP, w: tB, h: wH },
        { name: 'A', x: xA, y: D.TOP, w: wW, h: tA }, { name: 'W′', x: xM, y: D.TOP, w: wW, h: wH },
      ],
      labels: [
        L('❄ W (frozen)', D.LEFT + slotW / 2, D.TOP - 8, 't'),
        L(`k=${intText(k)}`, xW + wW / 2, below, 'dim'),
        L(`d=${intText(d)}`, xW - 5, D.TOP + wH / 2, 'dim', 'middle', true),
        L('+', xSlotBA - D.GAP / 2, D.TOP + wH / 2 + 7, 'op'),
        L(`ΔW = ${significant(s, 3)}·B·A`, xSlotBA + slotBA / 2, D.TOP - 8, 't'),
        L(`r=${intText(r)}`, xB + tB / 2, below, 'dim'),
        L('B', xB + tB / 2, below + 14, 'dim'),
        L(`k=${intText(k)}`, xA + wW / 2, D.TOP + tA + 14, 'dim'),
        L(`A (r=${intText(r)})`, xA + wW / 2, D.TOP + tA + 28, 'dim'),
        L('=', xSlotM - D.GAP / 2, D.TOP + wH / 2 + 7, 'op'),
        L('W′ = W + ΔW', xSlotM + slotW / 2, D.TOP - 8, 't'),
        L(`${intText(d)}×${intText(k)}`, xM + wW / 2, below, 'dim'),
      ],
      clamped: bTrue < D.MIN_RANK || aTrue < D.MIN_RANK,
      note: scaleNote(d, k, r, bTrue, aTrue),
    };
  }

  function scaleNote(d, k, r, bTrue, aTrue) {
    let note = `To scale: B is r/k = ${intText(r)}/${intText(k)} of W's width, A is r/d = ${intText(r)}/${intText(d)} of its height.`;
    const thin = [];
    if (bTrue < D.MIN_RANK) thin.push(`B ${significant(bTrue, 2)} units wide`);
    if (aTrue < D.MIN_RANK) thin.push(`A ${significant(aTrue, 2)} units high`);
    if (thin.length) note += ` That is ${thin.join(' and ')} (W is ${formatG(D.LONGER)}): drawn ${formatG(D.MIN_RANK)} thick to stay visible.`;
    return note;
  }

  // ------------------------------------------------------------------------------------ charts (charts.py)

  function bars(c) {
    const top = Math.max(c.full, c.lora);
    let n = 0; // the largest power of ten with lora·10**n <= full, in exact integers (10**13·lora passes 2**53)
    while (n < 12 && BigInt(c.lora) * 10n ** BigInt(n + 1) <= BigInt(c.full)) n += 1;
    let inset = null;
    if (n >= 2) {
      const zoom = 10 ** n;
      inset = { zoom, lora: (c.lora * zoom) / c.full, caption: `magnified ×${intText(zoom)}: the first ${decimalPower(2 - n)}% of the full bar` };
    }
    return {
      full: c.full / top,
      lora: c.lora / top,
      full_label: `full d·k  ${intText(c.full)}`,
      lora_label: `LoRA r(d+k)  ${intText(c.lora)} (${sharePercent(c.lora, c.full)})`,
      inset,
    };
  }

  function decimalPower(exponent) {
    return exponent >= 0 ? String(10 ** exponent) : '0.' + '0'.repeat(-exponent - 1) + '1';
  }

  function growthWithD(c) {
    const ratio = c.k / c.d;
    const xs = [...new Set([16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, c.d])].sort((a, b) => a - b);
    const ks = xs.map((x) => Math.max(1, roundHalfEven(x * ratio)));
    return {
      full: xs.map((x, i) => [x, mul(x, ks[i])]),
      lora: xs.map((x, i) => [x, mul(c.r, x + ks[i])]),
      you: [c.d, c.full, c.lora],
      legend: ['full d·k (quadratic)', `LoRA r=${intText(c.r)} (linear)`],
    };
  }

  function growthWithR(c) {
    const m = Math.min(c.d, c.k);
    const set = new Set([1, c.r, m]);
    for (let i = 0; i <= 40; i++) set.add(Math.max(1, roundHalfEven((m * i) / 40)));
    const ranks = [...set].sort((a, b) => a - b);
    return {
      lora: ranks.map((r) => [r, mul(r, c.d + c.k)]),
      full: c.full,
      max_r: m,
      break_even: Number(mul(c.d, c.k)) / (c.d + c.k),
      break_even_label: `break-even ${breakEvenText(c.d, c.k)}`,
      you: [c.r, c.lora],
    };
  }

  function tickLabel(exponent) {
    for (const [power, unit] of [[12, 'T'], [9, 'B'], [6, 'M'], [3, 'K']]) {
      if (exponent >= power) return `${10 ** (exponent - power)}${unit}`;
    }
    return `${10 ** exponent}`;
  }

  // ------------------------------------------------------------------------------------ colours (palette.py)

  const COLORS = { frozen: '#9e9e9e', b: '#D55E00', a: '#0072B2', merged: '#009E73', delta: '#CC79A7',
    full: '#E69F00', lora: '#0072B2', warn: '#B00020' };
  const DIVERGING = ['#0072B2', '#56B4E9', '#f7f7f7', '#E69F00', '#D55E00'];
  const HATCH = '#bdbdbd';

  // ------------------------------------------------------------------------------------ the rank slider
  // Linear from 1 to the limit when that is at most LINEAR_UP_TO ranks; else on a log scale over SLIDER_STEPS
  // positions, so that ranks 1, 2, 3, ... stay reachable by dragging at every d. Arrow keys step the rank by 1.

  const LINEAR_UP_TO = 128, SLIDER_STEPS = 1000;

  function rankScale(max) {
    if (max <= LINEAR_UP_TO) return { log: false, min: 1, max, toRank: (p) => p, toPosition: (r) => r };
    const span = Math.log(max);
    return {
      log: true, min: 0, max: SLIDER_STEPS,
      toRank: (p) => Math.min(max, Math.max(1, Math.round(Math.exp((p / SLIDER_STEPS) * span)))),
      toPosition: (r) => Math.round((SLIDER_STEPS * Math.log(r)) / span),
    };
  }

  /** Slider stops for d and k: 1..16, then 4 per octave (16, 20, 24, 28, 32, 40, ...) up to 65,536. */
  const DIM_STEPS = (() => {
    const steps = new Set(Array.from({ length: 16 }, (_, i) => i + 1));
    for (let base = 16; base < MAX_DIM; base *= 2) [0, 1, 2, 3].forEach((q) => steps.add(base + (q * base) / 4));
    steps.add(MAX_DIM);
    return [...steps].sort((a, b) => a - b);
  })();

  function nearestStep(value) {
    let best = 0;
    DIM_STEPS.forEach((step, i) => { if (Math.abs(step - value) < Math.abs(DIM_STEPS[best] - value)) best = i; });
    return best;
  }

  /** A typed number: Python float()'s grammar, also with thousands separators ('65,536'). */
  function typedNumber(text) {
    return pyFloat(String(text).replace(PY_STRIP, '').replace(/,(?=\d{3})/g, ''));
  }

  // ------------------------------------------------------------------------------------ DOM helpers

  const SVG_NS = 'http://www.w3.org/2000/svg';

  function h(tag, attrs = {}, children = []) {
    const el = tag.startsWith('svg:') ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'text') el.textContent = value;
      else el.setAttribute(name, value === true ? '' : value);
    }
    for (const child of [].concat(children)) if (child) el.append(child);
    return el;
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  /** Set an attribute only when it changes: an unchanged write still invalidates style in some browsers. */
  function attr(el, name, value) {
    const text = String(value);
    if (el.getAttribute(name) !== text) el.setAttribute(name, text);
  }

  /** Set a form control's value only when it changes (a write moves the caret and repaints the control). */
  function setValue(el, value) {
    const text = String(value);
    if (el.value !== text) el.value = text;
  }

  function show(el, visible) {
    el.hidden = !visible;
  }

  const n1 = (x) => (Math.round(x * 10) / 10).toString(); // SVG coordinates: a tenth of a unit is plenty

  // ------------------------------------------------------------------------------------ mount

  /**
   * Build the Explorer inside `el` and run it. Options:
   *   query:    a query object or a search string (default: location.search)
   *   initial:  URL parameters to start from (strings, e.g. {d: '1024', rmax: '16'}); the query overrides them
   *   history:  write the state into the address bar with history.replaceState (default true)
   *   links:    show the links to the app's other pages (default false: the MicroSim has no other pages)
   *   matrices: URL of the server's heatmap data for d, k <= 64 (default none: the section is left out)
   *   messages: show what was wrong with the query beside the controls (default true)
   *   onChange: called with the state after each change made in the page (the notebook widget syncs traits)
   * Returns {getState, setState, destroy}.
   */
  function mount(el, options = {}) {
    const given = typeof options.query === 'object' && options.query !== null ? options.query
      : queryFromSearch(options.query !== undefined ? options.query : (typeof location !== 'undefined' ? location.search : ''));
    // the MicroSim's own starting state, as URL parameters the address bar can override
    const parsed = stateFromQuery({ ...(options.initial || {}), ...given });
    const app = { state: parsed.state, embed: parsed.embed, view: null, frame: 0, ui: null, options };
    el.dataset.llMounted = '1';
    el.classList.add('llx');
    app.ui = build(el, app);
    // the served page names a bad URL itself (options.messages false); the MicroSim and the widget do it here
    if (options.messages !== false) showMessage(app.ui.urlMessage, parsed.messages.join('; '));
    render(app);
    return {
      getState: () => ({ ...app.state }),
      setState: (changes) => update(app, changes, false),
      destroy: () => {
        cancelAnimationFrame(app.frame); clearTimeout(app.moreTimer); clearTimeout(app.urlTimer);
        el.replaceChildren(); delete el.dataset.llMounted;
      },
      element: el,
    };
  }

  function showMessage(el, text) {
    setText(el, text || '');
    show(el, Boolean(text));
  }

  /** Apply a change the way the controls mean it (square locks k to d; r stays within its limit). A key press
   * or a typed value repaints at once (the next frame shows it); a drag repaints once per frame (`later`). */
  function update(app, changes, fromPage = true, later = false) {
    const next = { ...app.state, ...changes };
    if (next.square) {
      if ('k' in changes && !('d' in changes)) next.d = next.k; // k typed in a square layer moves d too
      else next.k = next.d;
    }
    next.r = Math.max(1, Math.min(next.r, rankLimit(next)));
    const changed = SCHEMA.some((p) => next[p.name] !== app.state[p.name]);
    app.state = next;
    if (!changed) return;
    if (later) schedule(app);
    else { cancelAnimationFrame(app.frame); app.frame = 0; render(app); }
    if (fromPage && app.options.onChange) app.options.onChange({ ...next });
  }

  /** One repaint per frame however many inputs arrive (a drag sends several pointer moves per frame). */
  function schedule(app) {
    if (app.frame) return;
    app.frame = requestAnimationFrame(() => { app.frame = 0; render(app); });
  }

  function build(el, app) {
    const ui = {};
    const numberBox = (testid, label) => h('input', { type: 'text', inputmode: 'decimal', autocomplete: 'off',
      spellcheck: 'false', class: 'llx-box', 'data-testid': testid, 'aria-label': label });
    const slider = (testid, label) => h('input', { type: 'range', class: 'llx-slider', 'data-testid': testid, 'aria-label': label });
    const row = (label, control, box, cls = '') => h('div', { class: 'llx-row ' + cls }, [h('span', { class: 'llx-label', text: label }), control, box]);

    ui.rank = slider('rank', 'rank r');
    ui.rankBox = numberBox('rank-input', 'rank r (exact)');
    ui.d = slider('d-slider', 'd (out)');
    ui.dBox = numberBox('d-input', 'd (out, exact)');
    ui.k = slider('k-slider', 'k (in)');
    ui.kBox = numberBox('k-input', 'k (in, exact)');
    for (const s of [ui.d, ui.k]) { s.min = 0; s.max = DIM_STEPS.length - 1; s.step = 1; }
    ui.square = h('input', { type: 'checkbox', 'data-testid': 'square' });
    ui.presets = h('select', { class: 'llx-select', 'data-testid': 'presets', 'aria-label': 'layer presets' },
      [h('option', { value: '', text: 'custom d × k' }), ...PRESETS.map(([label], i) => h('option', { value: String(i), text: label }))]);
    ui.alpha = numberBox('alpha', 'lora_alpha');
    ui.rule = [h('button', { type: 'button', class: 'llx-seg', 'data-testid': 'rule-alpha-r', text: 'α/r' }),
      h('button', { type: 'button', class: 'llx-seg', 'data-testid': 'rule-rslora', title: 'rsLoRA', text: 'α/√r' })];
    ui.target = numberBox('target', 'savings target %');
    ui.controlMessage = h('div', { class: 'llx-warn', role: 'alert', 'data-testid': 'control-message', hidden: true });
    ui.urlMessage = h('div', { class: 'llx-warn', role: 'alert', 'data-testid': 'url-message', hidden: true });
    ui.kRow = row('k (in)', ui.k, ui.kBox);
    const controls = h('div', { class: 'llx-controls', 'data-testid': 'controls' }, [
      row('rank r', ui.rank, ui.rankBox),
      row('d (out)', ui.d, ui.dBox),
      ui.kRow,
      h('div', { class: 'llx-row' }, [h('label', { class: 'llx-check' }, [ui.square, ' square']), ui.presets]),
      h('div', { class: 'llx-row' }, [h('span', { class: 'llx-label', text: 'lora_alpha' }), ui.alpha,
        h('span', { class: 'llx-segs', role: 'group', 'data-testid': 'rslora', 'aria-label': 'scaling rule' }, ui.rule)]),
      h('div', { class: 'llx-row' }, [h('span', { class: 'llx-label', text: 'savings target %' }), ui.target]),
      ui.controlMessage, ui.urlMessage,
    ]);

    const cell = (caption, testid) => {
      const value = h('div', { class: 'llx-num', 'data-testid': testid });
      return [h('div', { class: 'llx-cell' }, [h('div', { class: 'llx-cap', text: caption }), value]), value];
    };
    const cells = [['full d·k', 'full-params'], ['LoRA r(d+k)', 'lora-params'], ['LoRA share', 'lora-ratio'],
      ['break-even r', 'break-even']].map(([c, t]) => cell(c, t));
    [ui.full, ui.lora, ui.ratio, ui.breakEven] = cells.map((c) => c[1]);
    ui.savings = h('span', { class: 'llx-strong', 'data-testid': 'savings' });
    ui.warning = h('div', { class: 'llx-warn', role: 'alert', 'data-testid': 'rank-warning', hidden: true });
    ui.maxRank = h('span', { 'data-testid': 'max-rank' });
    const numbers = h('div', { class: 'llx-numbers', 'data-testid': 'numbers' }, [h('div', { class: 'llx-cells' }, cells.map((c) => c[0])),
      h('div', { class: 'llx-small' }, [ui.savings, ' ', ui.maxRank]), ui.warning]);
    ui.formulas = [0, 1, 2].map((i) => h('div', { 'data-testid': ['formula-full', 'formula-lora', 'formula-merge'][i] }));
    const formulas = h('div', { class: 'llx-mono', 'data-testid': 'formulas' }, ui.formulas);

    ui.diagram = buildDiagram();
    ui.bars = buildBars();
    ui.note = h('p', { class: 'llx-note', 'data-testid': 'scale-note' });
    const figure = h('div', { class: 'llx-figure' }, [h('div', { class: 'llx-diagram', 'data-testid': 'diagram-box' }, ui.diagram.svg),
      ui.bars.root, ui.note]);
    const core = h('div', { class: 'llx-core', 'data-testid': 'core' }, [controls, numbers, figure, formulas]);

    ui.growthD = buildChart('growth-d', 'Growth with d (k/d fixed): full is quadratic, LoRA linear');
    ui.growthR = buildChart('growth-r', 'Growth with r: past break-even LoRA costs more');
    ui.table = h('tbody');
    ui.worked = h('p');
    ui.benefits = h('ul', { class: 'llx-list' });
    const more = h('div', { class: 'llx-more' }, [
      h('div', { class: 'llx-charts' }, [ui.growthD.root, ui.growthR.root]),
      h('div', { class: 'llx-cols' }, [
        h('div', { class: 'llx-col' }, [h('h3', { text: 'Parameter table, for this layer' }),
          h('table', { class: 'llx-table', 'data-testid': 'param-table' }, [h('thead', {}, h('tr', {}, [
            h('th', { text: 'Method' }), h('th', { text: 'Formula' }), h('th', { class: 'llx-r', text: 'Parameters' })])), ui.table]),
          h('p', {}, [h('b', { text: 'Worked example. ' })]), ui.worked]),
        h('div', { class: 'llx-col' }, [h('h3', { text: "Benefits, with this layer's numbers" }), ui.benefits]),
      ]),
    ]);
    if (app.options.links) {
      ui.models = h('a', { 'data-testid': 'to-models', text: 'See it on a real model →' });
      ui.fitLab = h('a', { 'data-testid': 'to-fit-lab', text: 'Watch low rank work in the fit lab →' });
      more.append(h('p', { class: 'llx-links' }, [ui.models, ' ', ui.fitLab]));
    }
    if (app.options.matrices) ui.matrices = buildMatrices(app, more);
    el.replaceChildren(core, more);
    wireControls(app, ui);
    return ui;
  }

  // ------------------------------------------------------------------------------------ control events

  function wireControls(app, ui) {
    // a drag sends several input events per frame: they coalesce into one repaint (requestAnimationFrame)
    ui.rank.addEventListener('input', () => { clearControlMessage(app); update(app, { r: ui.rankScale.toRank(Number(ui.rank.value)) }, true, true); });
    ui.rank.addEventListener('keydown', (event) => {
      // the arrow keys step the rank itself by 1 (on the log scale one position is not one rank)
      const r = app.state.r, max = rankLimit(app.state);
      const keys = { ArrowRight: r + 1, ArrowUp: r + 1, ArrowLeft: r - 1, ArrowDown: r - 1, Home: 1, End: max,
        PageUp: Math.max(r + 1, Math.round(r * 1.25)), PageDown: Math.min(r - 1, Math.round(r / 1.25)) };
      if (!(event.key in keys)) return;
      event.preventDefault();
      clearControlMessage(app);
      update(app, { r: Math.max(1, Math.min(max, keys[event.key])) });
    });
    ui.d.addEventListener('input', () => { clearControlMessage(app); update(app, { d: DIM_STEPS[Number(ui.d.value)] }, true, true); });
    ui.k.addEventListener('input', () => { clearControlMessage(app); update(app, { k: DIM_STEPS[Number(ui.k.value)] }, true, true); });
    wireBox(app, ui.rankBox, 'r', () => [1, rankLimit(app.state)], true);
    wireBox(app, ui.dBox, 'd', () => [1, MAX_DIM], true);
    wireBox(app, ui.kBox, 'k', () => [1, MAX_DIM], true);
    wireBox(app, ui.alpha, 'alpha', () => [0.001, 100000], false);
    wireBox(app, ui.target, 'target', () => [1, 99.999], false);
    ui.square.addEventListener('change', () => update(app, { square: ui.square.checked }));
    ui.presets.addEventListener('change', () => {
      if (ui.presets.value === '') return;
      const [, d, k] = PRESETS[Number(ui.presets.value)];
      update(app, { d, k, square: d === k });
    });
    ui.rule[0].addEventListener('click', () => update(app, { rslora: false }));
    ui.rule[1].addEventListener('click', () => update(app, { rslora: true }));
  }

  /** A typed value: used as soon as it is valid; a refused one is told beside the controls, and when the box
   * is left (or Enter is pressed) it shows the value in use again, so it never shows a value the page ignores. */
  function wireBox(app, box, name, range, whole) {
    box.addEventListener('input', () => {
      const value = typedNumber(box.value);
      const [low, high] = range();
      const ok = Number.isFinite(value) && value >= low && value <= high && (!whole || Number.isInteger(value));
      box.setAttribute('aria-invalid', ok ? 'false' : 'true');
      if (!ok) {
        const kind = whole ? 'a whole number' : 'a number';
        const kept = whole ? intText(app.state[name]) : formatG(app.state[name]);
        showMessage(app.ui.controlMessage, `${name}: must be ${kind} from ${group(formatG(low))} to ${group(formatG(high))}; ` +
          `kept ${kept}`);
        return;
      }
      clearControlMessage(app);
      update(app, { [name]: value });
    });
    box.addEventListener('change', () => { box.value = boxText(app.state[name]); box.removeAttribute('aria-invalid'); });
    box.addEventListener('keydown', (event) => { if (event.key === 'Enter') box.dispatchEvent(new Event('change')); });
  }

  function clearControlMessage(app) {
    showMessage(app.ui.controlMessage, '');
  }

  function boxText(value) {
    return Number.isInteger(value) ? String(value) : formatG(value, 17).replace(/e\+?/, 'e');
  }

  // ------------------------------------------------------------------------------------ render

  function render(app) {
    const s = app.state, ui = app.ui;
    const view = computeView(s);
    app.view = view;
    renderControls(ui, s, view);
    setText(ui.full, view.full_text);
    setText(ui.lora, view.lora_text);
    setText(ui.ratio, view.ratio_text);
    setText(ui.breakEven, view.break_even_text);
    setText(ui.savings, view.savings_text);
    showMessage(ui.warning, view.warning);
    setText(ui.maxRank, view.max_rank_text);
    setText(ui.formulas[0], view.formula_full);
    setText(ui.formulas[1], view.formula_lora);
    setText(ui.formulas[2], view.formula_merge);
    drawDiagram(ui.diagram, view.diagram, s);
    drawBars(ui.bars, view.bars);
    scheduleMore(app, view);
    writeUrl(app);
    if (ui.models) { // links follow every change, like the address bar: one clicked mid-drag carries this state
      attr(ui.models, 'href', app.embed ? view.models_url_embed : view.models_url);
      attr(ui.fitLab, 'href', pageUrl('/labs', 'lab=fit', app.embed));
    }
    if (ui.matrices) ui.matrices.refresh(view);
  }

  function renderControls(ui, s, view) {
    const max = view.rank_max;
    if (!ui.rankScale || ui.rankMax !== max) {
      ui.rankScale = rankScale(max);
      ui.rankMax = max;
      ui.rank.min = ui.rankScale.min; ui.rank.max = ui.rankScale.max; ui.rank.step = 1;
    }
    setValue(ui.rank, ui.rankScale.toPosition(s.r));
    attr(ui.rank, 'aria-valuetext', `r = ${s.r}`);
    setValue(ui.d, nearestStep(s.d));
    setValue(ui.k, nearestStep(s.k));
    attr(ui.d, 'aria-valuetext', `d = ${s.d}`);
    attr(ui.k, 'aria-valuetext', `k = ${s.k}`);
    for (const [box, value] of [[ui.rankBox, s.r], [ui.dBox, s.d], [ui.kBox, s.k], [ui.alpha, s.alpha], [ui.target, s.target]]) {
      // the box being typed in keeps the text as typed (it is the value in use, or it is refused and told)
      if (box !== document.activeElement || box.getAttribute('aria-invalid') !== 'true') {
        if (box !== document.activeElement || typedNumber(box.value) !== value) setValue(box, boxText(value));
      }
    }
    if (ui.square.checked !== s.square) ui.square.checked = s.square;
    if (ui.kRow.hidden !== s.square) show(ui.kRow, !s.square);
    setValue(ui.presets, view.preset === null ? '' : String(view.preset));
    attr(ui.rule[0], 'aria-pressed', !s.rslora);
    attr(ui.rule[1], 'aria-pressed', s.rslora);
  }

  /** Below the fold (charts, table, text) follows once a control has rested MORE_MS (and at least every
   * MORE_MAX_MS during a long drag), in idle time: the frame after a key or a pointer move only lays out the
   * numbers, the diagram and the bars. */
  const MORE_MS = 150, MORE_MAX_MS = 1000;

  function scheduleMore(app, view) {
    app.moreView = view;
    const now = Date.now();
    if (!app.moreTimer) app.morePendingSince = now; // the first change the section has not shown yet
    clearTimeout(app.moreTimer);
    const wait = app.moreShown ? Math.max(0, Math.min(MORE_MS, app.morePendingSince + MORE_MAX_MS - now)) : 0;
    app.moreShown = true; // the first time: right after the core's first paint
    const idle = typeof requestIdleCallback === 'function' ? (f) => requestIdleCallback(f, { timeout: 300 }) : (f) => f();
    app.moreTimer = setTimeout(() => idle(() => { app.moreTimer = 0; renderMore(app, app.moreView); }), wait);
  }

  function renderMore(app, view) {
    const ui = app.ui;
    setText(ui.note, view.diagram.note);
    drawGrowthD(ui.growthD, view.growth_d);
    drawGrowthR(ui.growthR, view.growth_r);
    ui.table.replaceChildren(...view.example_rows.map(([m, f, v]) => h('tr', {}, [h('td', { text: m }), h('td', { text: f }), h('td', { class: 'llx-r', text: v })])));
    setText(ui.worked, view.worked_example);
    ui.benefits.replaceChildren(...view.benefits.map(([title, text]) => h('li', {}, [h('b', { text: title + '. ' }), text])));
  }

  /** The address bar follows the state once it changes (the link a page was opened with stays as it was until
   * then), at most every 200 ms: browsers throttle frequent replaceState. */
  function writeUrl(app) {
    if (app.options.history === false || typeof history === 'undefined') return;
    if (!app.urlArmed) { app.urlArmed = true; return; } // the first render shows the link as given
    clearTimeout(app.urlTimer);
    app.urlTimer = setTimeout(() => {
      const url = location.pathname + '?' + toQuery(app.state) + (app.embed ? '&embed=1' : '');
      try { history.replaceState(history.state, '', url); } catch (error) { app.options.history = false; } // file:// may refuse
    }, 200);
  }

  // ------------------------------------------------------------------------------------ diagram

  function buildDiagram() {
    const svg = h('svg:svg', { role: 'img', 'data-testid': 'diagram', class: 'llx-svg' });
    const defs = h('svg:defs', {}, h('svg:pattern', { id: 'llx-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
      h('svg:line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: HATCH, 'stroke-width': 2 })));
    const fills = [['url(#llx-hatch)', COLORS.frozen], [COLORS.b, COLORS.b], [COLORS.a, COLORS.a], [COLORS.merged, COLORS.merged]];
    const rects = fills.map(([fill, stroke], i) => h('svg:rect', { fill, stroke, 'stroke-width': 1.5, rx: 2, 'fill-opacity': i === 3 ? 0.85 : 1 },
      h('svg:title', { text: ['W (frozen)', 'B (trainable)', 'A (trainable)', 'W′ (merged)'][i] })));
    const labels = Array.from({ length: 12 }, () => h('svg:text'));
    svg.append(defs, ...rects, ...labels);
    return { svg, rects, labels };
  }

  function drawDiagram(d, layout, s) {
    attr(d.svg, 'viewBox', `0 0 ${n1(layout.width)} ${n1(layout.height)}`);
    attr(d.svg, 'aria-label', `W (${s.d} by ${s.k}, frozen) plus B (${s.d} by ${s.r}) times A (${s.r} by ${s.k}) equals W prime`);
    layout.rects.forEach((r, i) => {
      const rect = d.rects[i];
      attr(rect, 'x', n1(r.x)); attr(rect, 'y', n1(r.y)); attr(rect, 'width', n1(r.w)); attr(rect, 'height', n1(r.h));
    });
    layout.labels.forEach((label, i) => {
      const text = d.labels[i];
      setText(text, label.text);
      attr(text, 'x', n1(label.x)); attr(text, 'y', n1(label.y));
      attr(text, 'class', 'llx-' + label.cls);
      attr(text, 'text-anchor', label.anchor);
      if (label.rotate) attr(text, 'transform', `rotate(-90 ${n1(label.x)} ${n1(label.y)})`);
    });
  }

  // ------------------------------------------------------------------------------------ bars

  function buildBars() {
    const bar = (cls, testid) => {
      const fill = h('div', { class: 'llx-fill ' + cls });
      const label = h('span', { class: 'llx-bar-label' });
      return [h('div', { class: 'llx-bar', 'data-testid': testid }, [fill, label]), fill, label];
    };
    const [fullBar, fullFill, fullLabel] = bar('llx-full', 'bar-full');
    const [loraBar, loraFill, loraLabel] = bar('llx-lora', 'bar-lora');
    const insetFill = h('div', { class: 'llx-fill llx-lora' });
    const insetCaption = h('div', { class: 'llx-cap' });
    const inset = h('div', { class: 'llx-inset', 'data-testid': 'bars-inset' }, [insetCaption, h('div', { class: 'llx-bar llx-zoom' }, insetFill)]);
    const root = h('div', { class: 'llx-bars', 'data-testid': 'bars', role: 'img', 'aria-label': 'parameters to train, to scale' },
      [fullBar, loraBar, inset]);
    return { root, fullFill, fullLabel, loraFill, loraLabel, inset, insetFill, insetCaption };
  }

  function drawBars(b, data) {
    const width = (el, share) => { const w = `${share * 100}%`; if (el.style.width !== w) el.style.width = w; };
    width(b.fullFill, data.full);
    width(b.loraFill, data.lora);
    setText(b.fullLabel, data.full_label);
    setText(b.loraLabel, data.lora_label);
    if (b.inset.hidden !== (data.inset === null)) show(b.inset, data.inset !== null);
    if (data.inset) {
      width(b.insetFill, data.inset.lora);
      setText(b.insetCaption, data.inset.caption);
    }
  }

  // ------------------------------------------------------------------------------------ growth charts

  const CHART = { W: 360, H: 210, L: 46, R: 10, T: 30, B: 28 };

  function buildChart(testid, title) {
    const svg = h('svg:svg', { viewBox: `0 0 ${CHART.W} ${CHART.H}`, class: 'llx-svg llx-chart', role: 'img', 'aria-label': title });
    const root = h('figure', { class: 'llx-card', 'data-testid': testid }, [h('figcaption', { text: title }), svg]);
    return { root, svg };
  }

  function axes(svg, xTicks, yTicks, xName) {
    const { W, H, L, R, T, B } = CHART;
    const parts = [h('svg:line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'llx-axis' }),
      h('svg:line', { x1: L, y1: T, x2: L, y2: H - B, class: 'llx-axis' }),
      h('svg:text', { x: (L + W - R) / 2, y: H - 4, class: 'llx-tick', 'text-anchor': 'middle', text: xName })];
    // a tick on the y axis starts there, so it never runs into the lowest y label at the corner
    for (const [x, label] of xTicks) parts.push(h('svg:text', { x: n1(x), y: H - B + 12, class: 'llx-tick', 'text-anchor': x <= L + 1 ? 'start' : 'middle', text: label }));
    for (const [y, label] of yTicks) {
      parts.push(h('svg:line', { x1: L, y1: n1(y), x2: W - R, y2: n1(y), class: 'llx-grid' }));
      parts.push(h('svg:text', { x: L - 4, y: n1(y + 3), class: 'llx-tick', 'text-anchor': 'end', text: label }));
    }
    return parts;
  }

  function legend(items) {
    let x = CHART.L;
    return items.flatMap(([text, color, dashed]) => {
      const parts = [h('svg:line', { x1: x, y1: 12, x2: x + 18, y2: 12, stroke: color, 'stroke-width': 2.5, 'stroke-dasharray': dashed ? '5 3' : null }),
        h('svg:text', { x: x + 22, y: 16, class: 'llx-tick', text })];
      x += 30 + text.length * 6.2;
      return parts;
    });
  }

  const polyline = (points, color, dashed) => h('svg:polyline', { points: points.map(([x, y]) => `${n1(x)},${n1(y)}`).join(' '),
    fill: 'none', stroke: color, 'stroke-width': 2.5, 'stroke-dasharray': dashed ? '5 3' : null });
  const dot = (x, y, color) => h('svg:circle', { cx: n1(x), cy: n1(y), r: 4.5, fill: color, stroke: '#fff', 'stroke-width': 1.5 });

  function drawGrowthD(chart, g) {
    const { W, H, L, R, T, B } = CHART;
    const ys = [...g.full, ...g.lora].map(([, y]) => Number(y));
    const yLow = Math.floor(Math.log10(Math.min(...ys))), yHigh = Math.ceil(Math.log10(Math.max(...ys)));
    const x = (v) => L + ((Math.log2(v) - 4) / 12) * (W - L - R);
    const y = (v) => H - B - ((Math.log10(Number(v)) - yLow) / Math.max(1, yHigh - yLow)) * (H - B - T);
    const every = Math.ceil((yHigh - yLow + 1) / 6);
    const yTicks = [];
    for (let e = yLow; e <= yHigh; e += every) yTicks.push([y(10 ** e), tickLabel(e)]);
    const xTicks = [16, 256, 4096, 65536].map((v) => [x(v), intText(v)]);
    chart.svg.replaceChildren(...axes(chart.svg, xTicks, yTicks, 'd (log scale)'),
      polyline(g.full.map(([a, b]) => [x(a), y(b)]), COLORS.full, false),
      polyline(g.lora.map(([a, b]) => [x(a), y(b)]), COLORS.lora, true),
      dot(x(g.you[0]), y(g.you[1]), COLORS.full), dot(x(g.you[0]), y(g.you[2]), COLORS.lora),
      ...legend([[g.legend[0], COLORS.full, false], [g.legend[1], COLORS.lora, true]]));
  }

  function drawGrowthR(chart, g) {
    const { W, H, L, R, T, B } = CHART;
    const top = Math.max(g.full, Number(g.lora[g.lora.length - 1][1])) * 1.05;
    const span = Math.max(1, g.max_r - 1);
    const x = (v) => L + ((v - 1) / span) * (W - L - R);
    const y = (v) => H - B - (Number(v) / top) * (H - B - T);
    const xTicks = [[x(1), '1'], [x(g.max_r), intText(g.max_r)]];
    const yTicks = [[y(0), '0'], [y(g.full), shortCount(g.full)]];
    const be = x(Math.min(g.max_r, g.break_even));
    chart.svg.replaceChildren(...axes(chart.svg, xTicks, yTicks, 'r'),
      h('svg:line', { x1: L, y1: n1(y(g.full)), x2: W - R, y2: n1(y(g.full)), stroke: COLORS.full, 'stroke-width': 2.5 }),
      polyline(g.lora.map(([a, b]) => [x(a), y(b)]), COLORS.lora, false),
      h('svg:line', { x1: n1(be), y1: T, x2: n1(be), y2: H - B, stroke: COLORS.warn, 'stroke-dasharray': '4 3' }),
      h('svg:text', { x: n1(be + 4), y: T + 12, class: 'llx-tick llx-warn-text', text: g.break_even_label }),
      dot(x(g.you[0]), y(g.you[1]), COLORS.lora),
      ...legend([['LoRA r(d+k)', COLORS.lora, false], ['full d·k', COLORS.full, false]]));
  }

  // ------------------------------------------------------------------------------------ real matrices (served)
  // The server computes them (seeded numpy, a float64 SVD) for d, k <= 64; the page fetches them once the
  // controls rest and draws them on canvases. A failed fetch is told in the section, never thrown.

  function buildMatrices(app, parent) {
    const ui = {};
    ui.toggle = [h('button', { type: 'button', class: 'llx-seg', 'data-testid': 'trained-init', text: 'at initialisation (B = 0)' }),
      h('button', { type: 'button', class: 'llx-seg', 'data-testid': 'trained-after', text: 'after training' })];
    ui.hint = h('span', { 'data-testid': 'matrices-hint' });
    ui.goSmall = h('button', { type: 'button', class: 'llx-button', 'data-testid': 'go-small', text: 'Show a 64 × 64 layer' });
    ui.hintRow = h('div', { class: 'llx-row' }, [ui.hint, ui.goSmall]);
    ui.caption = h('p', { 'data-testid': 'matrices-caption' });
    ui.grid = h('div', { class: 'llx-heatmaps' });
    ui.sv = h('svg:svg', { viewBox: `0 0 ${CHART.W} ${CHART.H}`, class: 'llx-svg llx-chart', 'data-testid': 'sv-chart' });
    ui.svCaption = h('p', { 'data-testid': 'sv-caption' });
    ui.body = h('div', { 'data-testid': 'matrices' }, [ui.caption, ui.grid, ui.sv, ui.svCaption]);
    parent.append(h('section', { class: 'llx-card llx-matrices' }, [
      h('div', { class: 'llx-row' }, [h('h3', { text: 'The real matrices' }),
        h('span', { class: 'llx-segs', role: 'group', 'data-testid': 'trained', 'aria-label': 'matrices shown' }, ui.toggle)]),
      ui.hintRow, ui.body]));
    ui.toggle[0].addEventListener('click', () => update(app, { trained: false }));
    ui.toggle[1].addEventListener('click', () => update(app, { trained: true }));
    ui.goSmall.addEventListener('click', () => update(app, { d: 64, k: 64, square: true, r: Math.min(app.state.r, 8) }));
    let timer = 0, shownKey = null, controller = null;
    ui.refresh = (view) => {
      const s = app.state;
      ui.toggle[0].setAttribute('aria-pressed', String(!s.trained));
      ui.toggle[1].setAttribute('aria-pressed', String(s.trained));
      show(ui.hintRow, !view.small);
      show(ui.body, view.small);
      setText(ui.hint, view.matrices_hint + ' ');
      if (!view.small) return;
      const key = ['d', 'k', 'r', 'alpha', 'rslora', 'trained'].map((n) => `${n}=${formatValue(s[n])}`).join('&');
      if (key === shownKey) return;
      clearTimeout(timer);
      timer = setTimeout(async () => { // once the controls rest: one request, not one per slider step
        if (controller) controller.abort();
        controller = typeof AbortController !== 'undefined' ? new AbortController() : null;
        try {
          const response = await fetch(`${app.options.matrices}?${key}`, controller ? { signal: controller.signal } : {});
          const data = await response.json();
          if (!response.ok) throw new Error(data.error || response.statusText);
          shownKey = key;
          drawMatrices(ui, data);
        } catch (error) {
          if (error.name !== 'AbortError') setText(ui.caption, `The matrices could not be loaded: ${error.message}`);
        }
      }, 120);
    };
    return ui;
  }

  function drawMatrices(ui, data) {
    setText(ui.caption, data.caption);
    ui.grid.replaceChildren(...data.matrices.map((m) => {
      const canvas = h('canvas', { width: m.cols, height: m.rows, class: 'llx-heat', 'aria-label': m.title });
      const context = canvas.getContext && canvas.getContext('2d');
      if (context) {
        const image = context.createImageData(m.cols, m.rows);
        m.values.forEach((value, i) => {
          const [r, g, b] = diverging(value / data.limit);
          image.data.set([r, g, b, 255], i * 4);
        });
        context.putImageData(image, 0, 0);
      }
      return h('figure', { class: 'llx-heat-cell' }, [h('figcaption', { text: m.title }), canvas]);
    }));
    const { W, H, L, R, T, B } = CHART;
    const n = data.delta_sv.length, top = Math.max(...data.target_sv, ...data.delta_sv) * 1.05 || 1;
    const x = (i) => L + (i / n) * (W - L - R), y = (v) => H - B - (v / top) * (H - B - T);
    ui.sv.replaceChildren(...axes(ui.sv, [[x(0.5), '1'], [x(n - 0.5), String(n)]], [[y(0), '0'], [y(top / 1.05), significant(top / 1.05, 2)]], 'i'),
      ...data.delta_sv.map((v, i) => h('svg:rect', { x: n1(x(i) + 0.5), y: n1(y(v)), width: n1(Math.max(0.5, (W - L - R) / n - 1)), height: n1(H - B - y(v)), fill: COLORS.delta })),
      polyline(data.target_sv.map((v, i) => [x(i + 0.5), y(v)]), '#555', true),
      ...legend([['σ of ΔW = s·B·A', COLORS.delta, false], ['σ of task update ΔW*', '#555', true]]));
    setText(ui.svCaption, data.sv_caption);
  }

  /** Blue (negative) - white (0) - orange/vermillion (positive), for t in [-1, 1]. */
  function diverging(t) {
    const stops = DIVERGING.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
    const u = (Math.max(-1, Math.min(1, t)) + 1) / 2 * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(u)), f = u - i;
    return stops[i].map((c, j) => Math.round(c + (stops[i + 1][j] - c) * f));
  }

  /** Mount every element marked data-ll-explorer (its value: the options as JSON), now or once it appears
   * (the served page's elements are rendered by NiceGUI's Vue after this script has run). */
  function autoMount() {
    const pending = () => document.querySelectorAll('[data-ll-explorer]:not([data-ll-mounted])');
    const mountAll = () => pending().forEach((el) => {
      let options = {};
      try { options = JSON.parse(el.getAttribute('data-ll-explorer') || '{}'); } catch (error) { options = {}; }
      root.LoraExplorer.instances.push(mount(el, options));
    });
    mountAll();
    if (root.LoraExplorer.instances.length) return;
    const observer = new MutationObserver(() => {
      if (pending().length) { mountAll(); observer.disconnect(); }
    });
    observer.observe(document.documentElement, { childList: true, subtree: true });
  }

  const api = {
    // formatting (core/units.py, CPython's rules)
    fixed, group, intText, formatG, significant, percent, sharePercent, shortCount, binaryBytes, pyRepr,
    roundHalfEven, pyFloat,
    // state and URL (app/url_state.py, view.py)
    SCHEMA, PRESETS, MAX_DIM, stateFromQuery, queryFromSearch, rankLimit, toQuery, pageUrl, presetIndex,
    // the view
    computeView, diagramLayout, bars, growthWithD, growthWithR, tickLabel,
    // the page
    COLORS, DIVERGING, HATCH, DIM_STEPS, rankScale, mount, instances: [],
  };
  const script = typeof document !== 'undefined' ? document.currentScript : null; // null in an ES module
  root.LoraExplorer = api;
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  if (script) {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', autoMount);
    else autoMount();
  }
})(typeof globalThis !== 'undefined' ? globalThis : this);
