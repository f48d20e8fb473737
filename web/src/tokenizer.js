// CLIP byte-pair tokenizer: a port of open_clip's SimpleTokenizer (ViT-L-14, 'lower' cleaning, 77-token context).
//
// Cleaning follows open_clip's basic_clean + whitespace_clean: ftfy.fix_text, html.unescape twice, whitespace
// collapsed, lower case. Of ftfy we port the steps that change ordinary text (C1 controls read as
// Windows-1252, Latin ligatures, full/half-width forms, curly quotes, terminal escapes, control characters,
// NFC). Not ported: ftfy's mojibake repair (text that was decoded with the wrong codec, e.g. "Ã©" for "é")
// and its all-caps entity names (P&EACUTE;REZ); such prompts can tokenize differently from Python.

export const CONTEXT_LENGTH = 77;
const MERGES = 49152 - 256 - 2; // open_clip reads lines 1..48894 of the merges file

// Python's str.isspace() characters (what str.split() splits on); JavaScript's \s is a different set
const PY_SPACE = '\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPACES = new RegExp(`[${PY_SPACE}]+`, 'gu');
const PY_TRIM = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'gu');

// Windows-1252 for bytes 0x80-0x9f; the five undefined ones stay as they are ("sloppy" codec, as browsers do)
const CP1252 = '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const LIGATURES = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž', 'Ǉ': 'LJ',
  'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj', 'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl',
  'ﬅ': 'ſt', 'ﬆ': 'st',
};
const CONTROL = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/gu;

function fixText(text) {
  // ftfy.fix_text without mojibake repair; like ftfy, repeat until nothing changes
  for (;;) {
    const before = text;
    text = text.replace(/[\x80-\x9f]/g, (c) => CP1252[c.charCodeAt(0) - 0x80])
      .replace(/[Ĳĳŉ\u01f1-\u01f3\u01c4-\u01cc\ufb00-\ufb06]/gu, (c) => LIGATURES[c] ?? c)
      .replace(/[\u3000\uff01-\uffef]/gu, (c) => (c === '\u3000' ? ' ' : c.normalize('NFKC')))
      .replace(/[\u02bc\u2018-\u201b]/gu, "'").replace(/[\u201c-\u201f]/gu, '"')
      .replace(/\r\n|[\r\u2028\u2029\x85]/gu, '\n')
      .replace(/[\ud800-\udfff]/gu, '\ufffd') // lone surrogates (JS strings can hold them, Python's cannot)
      .replace(/\x1b\[((?:\d|;)*)([a-zA-Z])/g, '')
      .replace(CONTROL, '')
      .normalize('NFC');
    if (text === before) return text;
  }
}

// Python's html.unescape: numeric references by its rules, named ones by the HTML parser (same HTML5 table)
const INVALID_CODEPOINTS = new Set([
  ...range(0x1, 0x9), 0xb, ...range(0xe, 0x20), ...range(0x7f, 0xa0), ...range(0xfdd0, 0xfdf0),
  ...range(0, 0x11).flatMap((plane) => [plane * 0x10000 + 0xfffe, plane * 0x10000 + 0xffff]),
]);
function range(start, stop) { return Array.from({length: stop - start}, (_, i) => start + i); }

function numericReference(num) {
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252[num - 0x80];
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  if (INVALID_CODEPOINTS.has(num)) return '';
  return String.fromCodePoint(num);
}

// HTML5 named character references (Python's html.entities.html5, written by the site build): html.unescape's
// table, so prompts decode as in Python. Until it is loaded (loadTokenizer) named references stay as they are.
let entities = null;

function namedReference(name) { // Python's html._replace_charref for names: exact, else the longest known prefix
  if (entities === null) return `&${name}`;
  if (Object.hasOwn(entities, name)) return entities[name];
  for (let x = name.length - 1; x > 1; x--) {
    if (Object.hasOwn(entities, name.slice(0, x))) return entities[name.slice(0, x)] + name.slice(x);
  }
  return `&${name}`;
}

export function htmlUnescape(text) {
  if (!text.includes('&')) return text;
  return text.replace(/&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g, (_, ref) => {
    if (ref[0] !== '#') return namedReference(ref);
    const hex = ref[1] === 'x' || ref[1] === 'X';
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
    const num = BigInt(hex ? `0x${digits}` : digits); // Python's int(): arbitrarily long digit strings
    return numericReference(num > 0x110000n ? 0x110000 : Number(num));
  });
}

export function cleanText(text) {
  text = htmlUnescape(htmlUnescape(fixText(text))).replace(PY_TRIM, '');
  return text.split(PY_SPACES).filter(Boolean).join(' ').toLowerCase();
}

function bytesToUnicode() {
  const bs = [...range(33, 127), ...range(161, 173), ...range(174, 256)];
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  }
  const table = new Array(256); // byte -> symbol
  bs.forEach((b, i) => { table[b] = String.fromCodePoint(cs[i]); });
  return {table, symbols: cs.map((c) => String.fromCodePoint(c))}; // symbols in open_clip's vocabulary order
}

export class ClipTokenizer {
  /** @param {string} mergesText the decompressed bpe_simple_vocab_16e6.txt */
  constructor(mergesText) {
    const merges = mergesText.split('\n').slice(1, MERGES + 1).map((line) => line.split(/ +/));
    const {table, symbols: base} = bytesToUnicode();
    this.byteEncoder = table;
    const vocab = [...base, ...base.map((v) => `${v}</w>`), ...merges.map((m) => m.join('')),
      '<start_of_text>', '<end_of_text>'];
    this.encoder = new Map(vocab.map((token, i) => [token, i]));
    this.ranks = new Map(merges.map((m, i) => [`${m[0]} ${m[1]}`, i]));
    this.sot = this.encoder.get('<start_of_text>');
    this.eot = this.encoder.get('<end_of_text>');
    this.vocabSize = vocab.length;
    this.cache = new Map([['<start_of_text>', '<start_of_text>'], ['<end_of_text>', '<end_of_text>']]);
    this.pattern = /<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;
    this.utf8 = new TextEncoder();
  }

  /** Merge one pre-token (already byte-encoded) into BPE symbols, lowest merge rank first. */
  bpe(token) {
    const cached = this.cache.get(token);
    if (cached !== undefined) return cached;
    const chars = [...token];
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      let best = null;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) { bestRank = rank; best = [word[i], word[i + 1]]; }
      }
      if (best === null) break;
      const merged = [];
      for (let i = 0; i < word.length;) {
        if (word[i] === best[0] && i < word.length - 1 && word[i + 1] === best[1]) {
          merged.push(best[0] + best[1]);
          i += 2;
        } else {
          merged.push(word[i]);
          i += 1;
        }
      }
      word = merged;
    }
    const result = word.join(' ');
    this.cache.set(token, result);
    return result;
  }

  /** Text -> BPE ids, without start/end tokens (open_clip's SimpleTokenizer.encode). */
  encode(text) {
    const ids = [];
    for (const [piece] of cleanText(text).matchAll(this.pattern)) {
      const bytes = Array.from(this.utf8.encode(piece), (b) => this.byteEncoder[b]).join('');
      for (const symbol of this.bpe(bytes).split(' ')) ids.push(this.encoder.get(symbol));
    }
    return ids;
  }

  /** Text -> {ids: Int32Array(77) with start, words, end (last when cut), zero padding; truncated}. */
  tokenize(text, contextLength = CONTEXT_LENGTH) {
    let tokens = [this.sot, ...this.encode(text), this.eot];
    const truncated = tokens.length > contextLength;
    if (truncated) {
      tokens = tokens.slice(0, contextLength);
      tokens[contextLength - 1] = this.eot;
    }
    const ids = new Int32Array(contextLength);
    ids.set(tokens);
    return {ids, truncated, count: tokens.length};
  }
}

/** Fetch the gzipped merges file and the entity table, build the tokenizer (DecompressionStream: no library). */
export async function loadTokenizer(url, entitiesUrl) {
  const [response, table] = await Promise.all([fetch(url), fetch(entitiesUrl)]);
  if (!response.ok) throw new Error(`cannot load the tokenizer vocabulary ${url}: HTTP ${response.status}`);
  if (!table.ok) throw new Error(`cannot load the HTML entity table ${entitiesUrl}: HTTP ${table.status}`);
  entities = await table.json();
  const text = await new Response(response.body.pipeThrough(new DecompressionStream('gzip'))).text();
  return new ClipTokenizer(text);
}
