/**
 * Cutting streamed LLM text into speakable segments (sentences, or clauses of long sentences).
 * Pure string functions; no I/O.
 */

const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'st', 'vs', 'etc', 'e.g', 'i.e', 'prof', 'sr', 'jr', 'no', 'approx']);

export interface SegmentOptions {
  /** A segment shorter than this many characters is merged with the next one (default 12). */
  readonly minChars: number;
  /** A clause boundary (comma, semicolon, colon) ends a segment once it is this long (default 160). */
  readonly maxChars: number;
}

export const DEFAULT_SEGMENT_OPTIONS: SegmentOptions = { minChars: 12, maxChars: 160 };

function isSentenceEnd(text: string, index: number): boolean {
  // index points at the terminal punctuation character.
  const char = text[index];
  if (char === '!' || char === '?' || char === '…' || char === '\n') return true;
  if (char !== '.') return false;
  // "3.5" or "e.g." inside a word are not sentence ends.
  const before = text.slice(0, index);
  const word = /([A-Za-z.]+)$/.exec(before)?.[1]?.toLowerCase();
  if (word !== undefined && ABBREVIATIONS.has(word)) return false;
  if (word !== undefined && word.length === 1 && /[a-z]/.test(word)) return false; // initials: "J. Smith"
  return true;
}

/**
 * Splits `buffer` into complete segments and the remainder still waiting for more text.
 * With `final`, the remainder becomes the last segment.
 */
export function cutSegments(
  buffer: string,
  final: boolean,
  options: SegmentOptions = DEFAULT_SEGMENT_OPTIONS,
): { segments: string[]; rest: string } {
  const segments: string[] = [];
  let start = 0;
  for (let i = 0; i < buffer.length; i++) {
    const char = buffer[i] as string;
    const next = buffer[i + 1];
    const boundaryFollows = next === undefined ? false : /\s/.test(next);
    let cut = false;
    if ('.!?…'.includes(char) && boundaryFollows && isSentenceEnd(buffer, i)) cut = true;
    else if (char === '\n') cut = true;
    else if (',;:'.includes(char) && boundaryFollows && i - start >= options.maxChars) cut = true;
    if (!cut) continue;
    // Swallow closing quotes/brackets that belong to the sentence.
    let end = i + 1;
    while (end < buffer.length && /["')\]»”]/.test(buffer[end] as string)) end++;
    const piece = buffer.slice(start, end).trim();
    if (piece.length >= options.minChars) {
      segments.push(piece);
      start = end;
    }
  }
  let rest = buffer.slice(start);
  if (final) {
    const piece = rest.trim();
    if (piece.length > 0) segments.push(piece);
    rest = '';
  }
  return { segments, rest };
}
