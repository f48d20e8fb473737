// Every limit a request is checked against, as celeblook/limits.py defines them: the ranges come from site.json
// (written by `python -m celeblook web build` from the Python modules), so the page and the app refuse alike.

/** Numbers in messages: whole numbers as they are, others to 6 significant digits (Python's :g, roughly). */
const shownNumber = (x) => (Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(6))));

/** What a caller sent, short, for messages. */
export function shown(value) {
  const text = typeof value === 'string' ? `'${value}'` : ArrayBuffer.isView(value) ? `${value.constructor.name}(${value.length})`
    : (() => { try { return JSON.stringify(value) ?? String(value); } catch { return String(value); } })();
  return text.length <= 40 ? text : `${text.slice(0, 37)}...`;
}

/** A number in [low, high] (a whole one when ``integer``), as celeblook.limits.Range.check; numeric text is read. */
export function checkRange({name, low, high, integer}, value) {
  if (value === null || value === undefined || (typeof value === 'string' && !value.trim())) {
    throw new Error(`${name} is missing: give a number from ${shownNumber(low)} to ${shownNumber(high)}`);
  }
  const number = typeof value === 'string' ? Number(value) : value;
  if (typeof number !== 'number' || (typeof value === 'string' && Number.isNaN(number))) {
    throw new Error(`${name} must be a number, got ${shown(value)}`);
  }
  if (!(Number.isFinite(number) && number >= low && number <= high)) {
    throw new Error(`${name} must be from ${shownNumber(low)} to ${shownNumber(high)}, got ${shown(value)}`);
  }
  if (integer && !Number.isInteger(number)) throw new Error(`${name} must be a whole number, got ${shown(value)}`);
  return number;
}

/** One of ``options``, compared as text so that '512' and 512 both pick 512 (celeblook.limits.Choice). */
export function checkChoice(name, options, value) {
  if (value === null || value === undefined) throw new Error(`${name} is missing: choose one of ${options.join(', ')}`);
  const found = options.find((option) => String(value).trim() === String(option));
  if (found === undefined) throw new Error(`${name} must be one of ${options.join(', ')}, got ${shown(value)}`);
  return found;
}
