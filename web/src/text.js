// Prompts -> CLIP text embeddings -> W+ directions, as celeblook/text.py: the one check of a typed prompt, the
// embeddings (the curated bank's where it has the prompt, else the text encoder, with a notice for prompts cut
// to 77 tokens), the seeded variation of text to face, and delta = f(e_T(target)) - f(e_T(source)).

import {seededNormal} from './prng.js';
import {CONTEXT_LENGTH} from './tokenizer.js';

/**
 * [the cleaned prompt, notices]: invisible characters (control, format) count as spaces, whitespace is collapsed,
 * and a prompt over ``maxChars`` is cut with a notice (celeblook.text.check_prompt).
 */
export function checkPrompt(prompt, name, maxChars) {
  if (typeof prompt !== 'string') throw new Error(`the ${name} must be text, got ${prompt === null ? 'null' : typeof prompt}`);
  const text = prompt.replace(/[\p{Cc}\p{Cf}]/gu, ' ').split(/\s+/).filter(Boolean).join(' ');
  if (!text) throw new Error(`the ${name} is empty; type a description such as 'a smiling woman with red hair'`);
  if (text.length > maxChars) return [text.slice(0, maxChars), [`the ${name} was cut to its first ${maxChars} characters`]];
  return [text, []];
}

/**
 * Prompts -> {embedding (N*dim, unit), truncated, columns} from the text encoder (only the token columns up to the
 * batch's last end-of-text run where the graph allows: ``columns``).
 */
export async function encodeTexts(engine, processors, prompts) {
  const {tokens, truncated, counts} = await processors.text.tokens(prompts, engine.textAnyLength);
  if (counts.some((n) => n <= 2)) throw new Error('a prompt has no words the text encoder can read');
  return {embedding: await engine.embedTokens(tokens), truncated, columns: tokens[1][1]};
}

/**
 * Prompts -> {embedding (N*dim, unit), truncated, fromBank, notices}: the bank's embeddings where it has the
 * prompt (matched on cleaned text, as tokens are), the text encoder for the rest.
 */
export async function embedPrompts(engine, processors, prompts) {
  const known = await processors.text.bank();
  const keys = prompts.map((p) => processors.text.cleanText(p));
  const fromBank = keys.map((k) => known.has(k));
  const free = prompts.filter((_, i) => !fromBank[i]);
  const encoded = free.length ? await encodeTexts(engine, processors, free) : null;
  const dim = encoded ? encoded.embedding.length / free.length : known.get(keys[0]).length;
  const embedding = new Float32Array(prompts.length * dim);
  const truncated = [];
  let next = 0;
  prompts.forEach((_, i) => {
    if (fromBank[i]) {
      embedding.set(known.get(keys[i]), i * dim);
      truncated.push(false);
    } else {
      embedding.set(encoded.embedding.subarray(next * dim, (next + 1) * dim), i * dim);
      truncated.push(encoded.truncated[next]);
      next += 1;
    }
  });
  const notices = prompts.filter((_, i) => truncated[i])
    .map((p) => `prompt truncated to ${CONTEXT_LENGTH} tokens (CLIP's limit): '${p.slice(0, 60)}'...`);
  return {embedding, truncated, fromBank, notices};
}

/** embedding + a seeded random vector of norm ``scale`` (celeblook.text.vary_embedding: seed k varies alike). */
export function varyEmbedding(embedding, scale, seed) {
  const noise = seededNormal(seed, embedding.length);
  const norm = Math.hypot(...noise);
  return embedding.map((v, i) => v + (scale * noise[i]) / norm);
}

/** delta (slots*style) = f(target) - f(source), exactly zero when the two embeddings are equal. */
export async function editDirection(engine, target, source) {
  if (target.length === source.length && target.every((v, i) => v === source[i])) {
    return new Float32Array(engine.slots * engine.style);
  }
  const both = new Float32Array(target.length * 2);
  both.set(target);
  both.set(source, target.length);
  const mapped = await engine.map(both, 2);
  const half = mapped.length / 2;
  return mapped.slice(0, half).map((v, i) => v - mapped[half + i]);
}
