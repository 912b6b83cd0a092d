/**
 * Words as the runtime counts them: for truncating a reply to what was heard, and for the word rule
 * of barge-in (interim transcripts made only of backchannels — "yeah", "uh huh", "okay" — are not an
 * interruption). Pure string functions.
 */

/** The words of a text, split on white space. */
export function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

export function wordCount(text: string): number {
  return words(text).length;
}

/** The default English backchannels: listener feedback that does not take the turn. */
export const DEFAULT_BACKCHANNEL_WORDS: readonly string[] = Object.freeze([
  'yeah',
  'yes',
  'yep',
  'uh-huh',
  'mm-hmm',
  'okay',
  'ok',
  'right',
  'sure',
  'i see',
  'got it',
]);

/** Lower case, punctuation gone, and the spellings "uh huh" / "uhhuh" / "uh-huh" made one token. */
function tokens(text: string): string[] {
  return words(
    text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}'\s-]+/gu, ' ')
      .replace(/\s*-\s*/g, '-')
      .replace(/\b(uh|mm|um|hm)[\s-]?(huh|hmm|hm)\b/g, '$1-$2'),
  ).map((w) => w.replace(/^['-]+|['-]+$/g, '')).filter((w) => w.length > 0);
}

/**
 * How many words of `text` are not backchannels. Each entry of `backchannels` may be one word or a
 * phrase ("got it"); phrases are matched as whole word sequences, longest first.
 */
export function substantiveWordCount(text: string, backchannels: readonly string[]): number {
  const list = tokens(text);
  if (list.length === 0) return 0;
  const phrases = backchannels.map(tokens).filter((p) => p.length > 0).sort((a, b) => b.length - a.length);
  let count = 0;
  for (let i = 0; i < list.length; ) {
    const match = phrases.find((p) => p.every((w, j) => list[i + j] === w));
    if (match === undefined) {
      count += 1;
      i += 1;
    } else {
      i += match.length;
    }
  }
  return count;
}

/** The same words, ignoring case and punctuation ("Book a table." and "book a table" are the same). */
export function sameWords(a: string, b: string): boolean {
  const left = tokens(a);
  const right = tokens(b);
  return left.length === right.length && left.every((w, i) => w === right[i]);
}
