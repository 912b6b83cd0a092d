/**
 * Model files for pocketsphinx, generated at start-up.
 *
 * - An in-domain language model from a list of phrases: a trigram ARPA model (interpolated
 *   Witten-Bell, written as an ordinary backoff model) and the subset of the CMU pronouncing
 *   dictionary for the phrases' words. A recognizer restricted to the few hundred words a demo's
 *   users actually say is far more accurate than the generic 130,000-word model.
 * - An acoustic model directory that differs from the shipped one only in its `feat.params`
 *   `-cmninit` (the cepstral mean the recognizer starts each process with; see {@link writeAcousticModel}).
 *
 * The text builders ({@link normalizeWords}, {@link buildArpa}, {@link buildDictionary}) are pure;
 * the `write*` functions are the only ones that touch the file system.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The dictionary of Debian's `pocketsphinx-en-us` package. */
export const CMUDICT_PATH = '/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict';
/** The acoustic model of Debian's `pocketsphinx-en-us` package (what the asr filter uses by default). */
export const ACOUSTIC_MODEL_PATH = '/usr/share/pocketsphinx/model/en-us/en-us';

/** Bumped whenever the generated files change for the same phrases, so old cached files are not reused. */
const FORMAT_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// Words

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** 0..9999 as spoken English words ("four hundred fifty nine"); larger numbers digit by digit. */
export function numberToWords(value: number): string[] {
  if (!Number.isInteger(value) || value < 0) return [];
  if (value < 20) return [ONES[value] as string];
  if (value < 100) return [TENS[Math.floor(value / 10)] as string, ...(value % 10 === 0 ? [] : [ONES[value % 10] as string])];
  if (value < 1000) return [ONES[Math.floor(value / 100)] as string, 'hundred', ...(value % 100 === 0 ? [] : numberToWords(value % 100))];
  if (value < 10_000) return [...numberToWords(Math.floor(value / 1000)), 'thousand', ...(value % 1000 === 0 ? [] : numberToWords(value % 1000))];
  return [...String(value)].map((digit) => ONES[Number(digit)] as string);
}

/**
 * The words of a phrase as the recognizer spells them: lower case, punctuation dropped (an
 * apostrophe inside a word stays: "o'clock", "i'd"), hyphens split words, digits become words
 * ("7:30" → "seven thirty", "7:05" → "seven oh five", "4" → "four").
 */
export function normalizeWords(phrase: string): string[] {
  const words: string[] = [];
  const cleaned = phrase
    .toLowerCase()
    .replace(/(\d+):(\d)(\d)\b/g, (_, h: string, m1: string, m2: string) =>
      m1 === '0' ? (m2 === '0' ? `${h} o'clock` : `${h} oh ${m2}`) : `${h} ${m1}${m2}`,
    )
    .replace(/[’‘]/g, "'");
  for (const token of cleaned.split(/[^\p{L}\p{N}']+/u)) {
    const word = token.replace(/^'+|'+$/g, '');
    if (word === '') continue;
    if (/^\d+$/.test(word)) words.push(...numberToWords(Number(word)));
    else words.push(word);
  }
  return words;
}

// ---------------------------------------------------------------------------------------------
// ARPA

const BOS = '<s>';
const EOS = '</s>';

/**
 * A trigram ARPA model of `sentences` (each an array of words, without <s> and </s>).
 *
 * Interpolated Witten-Bell: for a history h seen c(h) times with N(h) distinct next words,
 * p(w|h) = (c(h,w) + N(h)·p(w|h')) / (c(h) + N(h)), where h' drops the oldest word of h; at the
 * bottom, p(w) interpolates with the uniform distribution over the vocabulary (which amounts to
 * add-one smoothing). Written as a backoff model, the listed probability of a seen n-gram is the
 * interpolated one and the backoff weight of h is N(h) / (c(h) + N(h)): the mass left for the
 * words never seen after h, spread as the lower order spreads it. Every history's probabilities
 * sum to one.
 */
export function buildArpa(sentences: readonly (readonly string[])[]): string {
  // counts[n-1]: n-gram (words joined by ' ') → count.
  const counts: Map<string, number>[] = [new Map(), new Map(), new Map()];
  for (const sentence of sentences) {
    if (sentence.length === 0) continue;
    const tokens = [BOS, ...sentence, EOS];
    for (let n = 1; n <= 3; n++) {
      const table = counts[n - 1] as Map<string, number>;
      for (let i = 0; i + n <= tokens.length; i++) {
        // <s> is never predicted: it only starts histories.
        if (n === 1 && i === 0) continue;
        const key = tokens.slice(i, i + n).join(' ');
        table.set(key, (table.get(key) ?? 0) + 1);
      }
    }
  }
  const [unigrams, bigrams, trigrams] = counts as [Map<string, number>, Map<string, number>, Map<string, number>];

  // For each history (an (n-1)-gram) of the n-grams of order n: its count and its distinct followers.
  const histories = (table: Map<string, number>): Map<string, { count: number; types: number }> => {
    const out = new Map<string, { count: number; types: number }>();
    for (const [key, count] of table) {
      const history = key.slice(0, key.lastIndexOf(' '));
      const entry = out.get(history) ?? { count: 0, types: 0 };
      entry.count += count;
      entry.types += 1;
      out.set(history, entry);
    }
    return out;
  };
  const bigramHistories = histories(bigrams);
  const trigramHistories = histories(trigrams);

  const total = [...unigrams.values()].reduce((a, b) => a + b, 0);
  const vocabulary = unigrams.size;
  const p1 = new Map<string, number>();
  for (const [word, count] of unigrams) p1.set(word, (count + 1) / (total + vocabulary));

  const interpolate = (count: number, history: { count: number; types: number }, lower: number): number =>
    (count + history.types * lower) / (history.count + history.types);
  const backoff = (history: { count: number; types: number } | undefined): number =>
    history === undefined ? 1 : history.types / (history.count + history.types);

  const p2 = new Map<string, number>();
  for (const [key, count] of bigrams) {
    const [u, w] = key.split(' ') as [string, string];
    p2.set(key, interpolate(count, bigramHistories.get(u) as { count: number; types: number }, p1.get(w) as number));
  }
  const p3 = new Map<string, number>();
  for (const [key, count] of trigrams) {
    const [u, v, w] = key.split(' ') as [string, string, string];
    // The bigram "v w" exists: it occurs in the same sentence as the trigram.
    p3.set(key, interpolate(count, trigramHistories.get(`${u} ${v}`) as { count: number; types: number }, p2.get(`${v} ${w}`) as number));
  }

  const log = (p: number): string => Math.log10(p).toFixed(6);
  const lines = ['\\data\\', `ngram 1=${unigrams.size + 1}`, `ngram 2=${bigrams.size}`, `ngram 3=${trigrams.size}`, '', '\\1-grams:'];
  // <s> has no probability of its own (-99 by convention), only a backoff weight.
  lines.push(`-99.000000\t${BOS}\t${log(backoff(bigramHistories.get(BOS)))}`);
  for (const word of [...unigrams.keys()].sort()) {
    const bow = word === EOS ? '' : `\t${log(backoff(bigramHistories.get(word)))}`;
    lines.push(`${log(p1.get(word) as number)}\t${word}${bow}`);
  }
  lines.push('', '\\2-grams:');
  for (const key of [...bigrams.keys()].sort()) {
    const bow = key.endsWith(` ${EOS}`) ? '' : `\t${log(backoff(trigramHistories.get(key)))}`;
    lines.push(`${log(p2.get(key) as number)}\t${key}${bow}`);
  }
  lines.push('', '\\3-grams:');
  for (const key of [...trigrams.keys()].sort()) lines.push(`${log(p3.get(key) as number)}\t${key}`);
  lines.push('', '\\end\\', '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Dictionary

export interface DictionarySubset {
  /** The dictionary lines for the words, alternates ("word(2)") included, in cmudict's order. */
  readonly text: string;
  /** The words that have an entry. */
  readonly found: ReadonlySet<string>;
  /** The words cmudict does not have, sorted. */
  readonly missing: readonly string[];
}

/** The lines of a CMU-format dictionary whose head word (before any "(n)") is one of `words`. */
export function buildDictionary(words: Iterable<string>, cmudict: string): DictionarySubset {
  const wanted = new Set(words);
  const found = new Set<string>();
  const lines: string[] = [];
  let start = 0;
  while (start < cmudict.length) {
    let end = cmudict.indexOf('\n', start);
    if (end === -1) end = cmudict.length;
    const space = cmudict.indexOf(' ', start);
    if (space !== -1 && space < end) {
      const head = cmudict.slice(start, space);
      const paren = head.indexOf('(');
      const word = paren === -1 ? head : head.slice(0, paren);
      if (wanted.has(word)) {
        found.add(word);
        lines.push(cmudict.slice(start, end).trimEnd());
      }
    }
    start = end + 1;
  }
  const missing = [...wanted].filter((w) => !found.has(w)).sort();
  return { text: lines.length === 0 ? '' : `${lines.join('\n')}\n`, found, missing };
}

// ---------------------------------------------------------------------------------------------
// Files

export interface LanguageModelFiles {
  /** The ARPA trigram model. */
  readonly lm: string;
  /** The pronouncing dictionary subset. */
  readonly dict: string;
  /** The model's vocabulary: every word that has a pronunciation. */
  readonly words: readonly string[];
  /** Words of the phrases that the dictionary lacks; they are left out of the model. */
  readonly missing: readonly string[];
  /** The sentences the model was estimated from (after normalization and splitting at missing words). */
  readonly sentences: number;
}

export interface LanguageModelOptions {
  /** The CMU-format dictionary to take pronunciations from. Default {@link CMUDICT_PATH}. */
  readonly cmudictPath?: string;
  /**
   * Where the files go. Default: a directory under the OS temp dir named by a hash of the phrases
   * and the dictionary, so a restart with the same phrases reuses the files written before.
   */
  readonly directory?: string;
}

const dictionaries = new Map<string, Promise<string>>();

/** Reads a dictionary once per process (cmudict is 3 MB). */
function readDictionary(path: string): Promise<string> {
  let text = dictionaries.get(path);
  if (text === undefined) {
    text = readFile(path, 'utf8');
    dictionaries.set(path, text);
    text.catch(() => dictionaries.delete(path));
  }
  return text;
}

/**
 * Writes (or finds, from an earlier start) the ARPA model and the dictionary for `phrases`. A word
 * cmudict lacks is dropped and reported in `missing`; the phrase is split there, so no n-gram
 * bridges the gap.
 */
export async function writeLanguageModel(phrases: readonly string[], options: LanguageModelOptions = {}): Promise<LanguageModelFiles> {
  const cmudictPath = options.cmudictPath ?? CMUDICT_PATH;
  const normalized = phrases.map(normalizeWords).filter((words) => words.length > 0);
  const dictionaryStat = await stat(cmudictPath);
  const key = createHash('sha256')
    .update(JSON.stringify({ v: FORMAT_VERSION, cmudictPath, size: dictionaryStat.size, mtime: dictionaryStat.mtimeMs, normalized }))
    .digest('hex')
    .slice(0, 16);
  const directory = options.directory ?? join(tmpdir(), `voxstate-lm-${key}`);
  const lm = join(directory, 'in-domain.arpa');
  const dict = join(directory, 'in-domain.dict');

  const dictionary = buildDictionary(new Set(normalized.flat()), await readDictionary(cmudictPath));
  const sentences = normalized.flatMap((words) => splitAt(words, (w) => !dictionary.found.has(w)));
  const result: LanguageModelFiles = { lm, dict, words: [...dictionary.found].sort(), missing: dictionary.missing, sentences: sentences.length };
  if (options.directory === undefined && (await exists(lm)) && (await exists(dict))) return result;

  await mkdir(directory, { recursive: true });
  // Written under temporary names and renamed, so a concurrent start never reads half a file.
  const suffix = `.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await Promise.all([writeFile(lm + suffix, buildArpa(sentences)), writeFile(dict + suffix, dictionary.text)]);
  await Promise.all([rename(lm + suffix, lm), rename(dict + suffix, dict)]);
  return result;
}

/**
 * A copy of the acoustic model directory `source` (symbolic links to its files) whose `feat.params`
 * sets `-cmninit` to `cmninit`. pocketsphinx subtracts a running cepstral mean from the features;
 * each ffmpeg process starts from `-cmninit` and only updates it at the end of a segment (or after
 * 8 s of speech), so the first segment of every recognition is decoded with it. The directory goes
 * under the OS temp dir, named by a hash of `source` and `cmninit`, and is reused.
 */
export async function writeAcousticModel(source: string, cmninit: readonly number[]): Promise<string> {
  const params = await readFile(join(source, 'feat.params'), 'utf8');
  const line = `-cmninit ${cmninit.map((v) => String(v)).join(',')}`;
  const key = createHash('sha256').update(JSON.stringify({ v: FORMAT_VERSION, source, line })).digest('hex').slice(0, 16);
  const directory = join(tmpdir(), `voxstate-hmm-${key}`);
  const featParams = join(directory, 'feat.params');
  if (await exists(featParams)) return directory;
  await mkdir(directory, { recursive: true });
  for (const entry of await readdir(source)) {
    if (entry === 'feat.params') continue;
    try {
      await symlink(join(source, entry), join(directory, entry));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  const lines = params.split('\n').filter((l) => !/^-cmninit\s/.test(l) && l.trim() !== '');
  // feat.params last, under a temporary name: its presence means the directory is complete.
  const temporary = `${featParams}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, `${[...lines, line].join('\n')}\n`);
  await rename(temporary, featParams);
  return directory;
}

/** The runs of `words` between the words for which `drop` is true. */
function splitAt(words: readonly string[], drop: (word: string) => boolean): string[][] {
  const runs: string[][] = [[]];
  for (const word of words) {
    if (drop(word)) runs.push([]);
    else (runs.at(-1) as string[]).push(word);
  }
  return runs.filter((run) => run.length > 0);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
