/**
 * A model-free end-of-turn detector: it reads how the turn's text ends. Works on punctuated text
 * from cloud recognizers and on lowercase, unpunctuated text from pocketsphinx.
 *
 * In order, the first rule that applies decides (docs/turn-detection.md has the table):
 *   1. no letters or digits              → 0.5  (unknown)
 *   2. ends with `,` `;` `:` `…` `...` or a dash → 0; a word cut off with a hyphen ("tomor-") → 0
 *   3. ends with `.` `?` `!`             → 1
 *   4. the longest listed phrase that ends the text:
 *        incomplete ending ("for", "the", "and", "um", "such as") → 0
 *        pending ending ("book", "want", "can you")              → 0.3
 *        complete ending ("think so", "hold on", "yes I would")  → 0.85, the same as rule 5
 *   5. anything else                     → 0.85
 * and {@link LexicalTurnDetector} adds one rule that needs the history: a short answer (at most
 * `shortAnswerMaxWords` words) to the agent's question scores 1 instead of 0.85.
 *
 * Quotes, closing brackets and white space at the end are ignored; so are bracketed recognizer
 * annotations ("[noise]", "<unk>"). Words are compared in lower case, with ’ read as '.
 */
import { ConfigError } from '../errors.js';
import type { ChatMessage } from '../providers/types.js';
import type { TurnDetector, TurnDetectorInput } from './detector.js';

/** The probability each rule gives. */
export const LEXICAL_PROBABILITY = Object.freeze({
  noWords: 0.5,
  trailingMark: 0,
  cutOffWord: 0,
  sentenceEnd: 1,
  incompleteEnding: 0,
  pendingEnding: 0.3,
  completeEnding: 0.85,
  unpunctuated: 0.85,
  shortAnswer: 1,
});

/**
 * Words and phrases after which an English turn is not finished: conjunctions, prepositions,
 * articles, determiners and possessives, auxiliaries and their contractions, subject pronouns,
 * fillers. Words that often end a sentence as well ("up", "off", "this", "her", "do", "have",
 * "before") are left out: a wrong "incomplete" only makes the agent wait, but waits add up.
 */
export const DEFAULT_INCOMPLETE_ENDINGS: readonly string[] = Object.freeze([
  // conjunctions and subordinators ("'cause" is read as "cause")
  'and', 'or', 'but', 'so', 'nor', 'because', 'cause', 'if', 'unless', 'although', 'whereas',
  'whether', 'while', 'then', 'than', 'that', 'which', 'whose',
  // prepositions
  'to', 'of', 'in', 'on', 'at', 'for', 'with', 'from', 'about', 'into', 'onto', 'by', 'as', 'through',
  'without', 'between', 'during', 'including', 'until', 'toward', 'towards', 'upon', 'against', 'among',
  'via', 'per', 'except',
  // articles, determiners, possessives
  'the', 'a', 'an', 'every', 'my', 'your', 'our', 'their', 'its',
  // auxiliaries and modals
  'is', 'are', 'was', 'were', 'am', 'be', 'been', 'will', 'would', 'can', 'could', 'should', 'shall',
  'must', 'might',
  // contractions of a subject and an auxiliary
  "i'm", "you're", "we're", "they're", "he's", "she's", "it's", "that's", "there's", "here's",
  "what's", "where's", "who's", "how's", "let's", "i'll", "you'll", "we'll", "they'll", "i'd",
  "you'd", "we'd", "they'd", "i've", "you've", "we've", "they've",
  // subject pronouns
  'i', 'we', 'they', 'he', 'she',
  // fillers and hedges
  'um', 'umm', 'uh', 'uhh', 'uhm', 'er', 'erm', 'hmm', 'like', 'you know', 'i mean', 'kind of',
  'sort of',
  // multiword connectives (their last word may not be listed on its own)
  'such as', 'as well as',
]);

/**
 * Endings after which the turn is probably not finished yet: verbs that want an object ("I'd like
 * to book"), requests that have not said what ("can you").
 */
export const DEFAULT_PENDING_ENDINGS: readonly string[] = Object.freeze([
  'want', 'need', 'book', 'get', 'make', 'take', 'give', 'find', 'buy', 'order', 'reserve', 'bring',
  'send', 'tell', 'show', 'put',
  'tell me', 'show me', 'give me', 'get me', 'send me', 'bring me', 'let me',
  'can you', 'could you', 'would you', 'will you', 'do you', 'did you',
  'is there', 'are there', 'i think',
]);

/**
 * Common complete phrases that end on an incomplete ending: each is longer than the ending it
 * overrides ("I think so" ends on "so", "yes I would" on "would").
 */
export const DEFAULT_COMPLETE_ENDINGS: readonly string[] = Object.freeze([
  'think so', 'hope so', 'guess so', 'believe so', 'afraid so', 'said so', 'do so', 'or so', 'that so',
  'so on', 'hold on', 'come on', 'go on', 'carry on', 'later on', 'it on', 'them on',
  'come in', 'log in', 'sign in', 'check in', 'it in', 'them in', 'me in',
  'stop by', 'come by', 'drop by', 'stand by',
  'what for', 'looking for', 'waiting for', 'asking for', 'asked for', 'paid for',
  'heard of', 'think of', 'thought of', 'made of', 'afraid of', 'you from', 'where from',
  'love to', 'happy to', 'glad to',
  'like that', 'about that', 'with that', 'for that', 'of that', 'do that', 'did that', 'all that',
  'is that', 'was that', "that's that",
  'you then', 'by then', 'until then', 'since then', 'okay then', 'ok then', 'right then',
  'you like', 'do you know',
  'i am', 'i was', 'i will', 'i would', 'i can', 'i could', 'we are', 'we will', 'we would', 'we can',
  'you are', 'you can', 'it is', 'it was', 'it will', 'it would', 'they are', 'they were',
]);

export interface LexicalWordLists {
  /** Endings that leave the turn unfinished (p = 0). Default {@link DEFAULT_INCOMPLETE_ENDINGS}. */
  readonly incompleteEndings?: readonly string[];
  /** Endings that leave it probably unfinished (p = 0.3). Default {@link DEFAULT_PENDING_ENDINGS}. */
  readonly pendingEndings?: readonly string[];
  /** Complete phrases that override a shorter ending (p = 0.85). Default {@link DEFAULT_COMPLETE_ENDINGS}. */
  readonly completeEndings?: readonly string[];
}

export type LexicalRule =
  | 'no-words'
  | 'trailing-mark'
  | 'cut-off-word'
  | 'sentence-end'
  | 'incomplete-ending'
  | 'pending-ending'
  | 'complete-ending'
  | 'unpunctuated'
  | 'short-answer';

/** Why the text got its probability: for tests and logs. */
export interface LexicalVerdict {
  readonly probability: number;
  readonly rule: LexicalRule;
  /** The punctuation mark or listed phrase that decided, as normalized ("tomor-", "for", "can you"). */
  readonly ending?: string;
}

type EndingClass = 'incomplete' | 'pending' | 'complete';

interface CompiledLists {
  /** Phrase (its words joined by one space) → class. */
  readonly endings: ReadonlyMap<string, EndingClass>;
  /** Words in the longest phrase. */
  readonly longest: number;
}

const CLOSERS = /[\s"'“”‘’«»‹›)\]}]+$/u;
const ANNOTATIONS = /\[[^\]]*\]|<[^>]*>/g;
const TRAILING_MARK = /(?:\.{2,}|…|[,;:–—-])$/u;
const SENTENCE_END = /[.?!]$/;
const HAS_WORD = /[\p{L}\p{N}]/u;

/** Lower-case words: apostrophes unified, everything but letters, digits, ' and - is a separator. */
function tokens(text: string): string[] {
  return text
    .replace(ANNOTATIONS, ' ')
    .toLowerCase()
    .replace(/[’ʼ‘`]/g, "'")
    .replace(/[^\p{L}\p{N}'-]+/gu, ' ')
    .split(' ')
    .map((w) => w.replace(/^['-]+|['-]+$/g, ''))
    .filter((w) => w.length > 0);
}

function list(field: string, value: readonly string[] | undefined, fallback: readonly string[]): string[][] {
  const entries = value ?? fallback;
  if (!Array.isArray(entries)) throw new ConfigError(field, 'must be an array of words or phrases');
  return entries.map((entry: unknown, i) => {
    const words = typeof entry === 'string' ? tokens(entry) : [];
    if (words.length === 0) {
      throw new ConfigError(`${field}[${i}]`, `must be a non-empty word or phrase, got ${JSON.stringify(entry)}`);
    }
    return words;
  });
}

function compile(lists: LexicalWordLists = {}): CompiledLists {
  const endings = new Map<string, EndingClass>();
  let longest = 0;
  // Later classes win a tie (the same phrase in two lists): incomplete beats pending beats complete.
  const classes: [EndingClass, string[][]][] = [
    ['complete', list('completeEndings', lists.completeEndings, DEFAULT_COMPLETE_ENDINGS)],
    ['pending', list('pendingEndings', lists.pendingEndings, DEFAULT_PENDING_ENDINGS)],
    ['incomplete', list('incompleteEndings', lists.incompleteEndings, DEFAULT_INCOMPLETE_ENDINGS)],
  ];
  for (const [kind, phrases] of classes) {
    for (const words of phrases) {
      endings.set(words.join(' '), kind);
      longest = Math.max(longest, words.length);
    }
  }
  return { endings, longest };
}

const DEFAULT_LISTS = compile();

function verdict(text: string, lists: CompiledLists): LexicalVerdict {
  const trimmed = text.replace(ANNOTATIONS, ' ').replace(CLOSERS, '');
  if (!HAS_WORD.test(trimmed)) return { probability: LEXICAL_PROBABILITY.noWords, rule: 'no-words' };
  const mark = TRAILING_MARK.exec(trimmed)?.[0];
  if (mark !== undefined) {
    const cutOff = mark === '-' && /[\p{L}\p{N}]-$/u.test(trimmed);
    if (cutOff) {
      const word = tokens(trimmed).at(-1) ?? '';
      return { probability: LEXICAL_PROBABILITY.cutOffWord, rule: 'cut-off-word', ending: `${word}-` };
    }
    return { probability: LEXICAL_PROBABILITY.trailingMark, rule: 'trailing-mark', ending: mark };
  }
  const end = SENTENCE_END.exec(trimmed)?.[0];
  if (end !== undefined) return { probability: LEXICAL_PROBABILITY.sentenceEnd, rule: 'sentence-end', ending: end };
  const words = tokens(trimmed);
  for (let n = Math.min(lists.longest, words.length); n >= 1; n -= 1) {
    const ending = words.slice(-n).join(' ');
    switch (lists.endings.get(ending)) {
      case 'incomplete':
        return { probability: LEXICAL_PROBABILITY.incompleteEnding, rule: 'incomplete-ending', ending };
      case 'pending':
        return { probability: LEXICAL_PROBABILITY.pendingEnding, rule: 'pending-ending', ending };
      case 'complete':
        return { probability: LEXICAL_PROBABILITY.completeEnding, rule: 'complete-ending', ending };
      case undefined:
        break;
    }
  }
  return { probability: LEXICAL_PROBABILITY.unpunctuated, rule: 'unpunctuated' };
}

/**
 * The rule that decides `text` and its probability (rules 1–5 of the module comment; no history).
 * Each list in `lists` replaces the English default; spread the default to extend it. Throws
 * ConfigError naming an invalid entry (`incompleteEndings[3]`).
 */
export function lexicalVerdict(text: string, lists?: LexicalWordLists): LexicalVerdict {
  return verdict(text, lists === undefined ? DEFAULT_LISTS : compile(lists));
}

/** Probability in [0, 1] that `text` is a finished turn, from how it ends (see {@link lexicalVerdict}). */
export function lexicalEndOfTurn(text: string, lists?: LexicalWordLists): number {
  return lexicalVerdict(text, lists).probability;
}

export interface LexicalTurnDetectorOptions extends LexicalWordLists {
  /**
   * A turn of at most this many words that answers the agent's question ("For how many?" → "four")
   * and ends neither on an incomplete nor on a pending ending scores 1 instead of 0.85. Default 4;
   * 0 turns the rule off.
   */
  readonly shortAnswerMaxWords?: number;
}

/** True when the last thing said before this turn was the agent, ending on a question mark. */
function agentAskedQuestion(history: readonly ChatMessage[]): boolean {
  for (let i = history.length - 1; i >= 0; i -= 1) {
    const message = history[i];
    if (message === undefined || message.role === 'system' || message.role === 'tool') continue;
    const content = message.content.replace(CLOSERS, '');
    if (message.role === 'assistant' && content.length === 0) continue; // a tool-call step
    return message.role === 'assistant' && content.endsWith('?');
  }
  return false;
}

/** The built-in detector: {@link lexicalVerdict} plus the short-answer rule. Synchronous, no model. */
export class LexicalTurnDetector implements TurnDetector {
  readonly name = 'lexical';
  readonly #lists: CompiledLists;
  readonly #shortAnswerMaxWords: number;

  constructor(options: LexicalTurnDetectorOptions = {}) {
    this.#lists = compile(options);
    const max = options.shortAnswerMaxWords ?? 4;
    if (!(Number.isInteger(max) && max >= 0)) {
      throw new ConfigError('shortAnswerMaxWords', `must be an integer >= 0, got ${JSON.stringify(max)}`);
    }
    this.#shortAnswerMaxWords = max;
  }

  /** The rule that decides this turn (for logs), with the history taken into account. */
  verdict(text: string, history: readonly ChatMessage[] = []): LexicalVerdict {
    const result = verdict(text, this.#lists);
    const lifts = result.rule === 'unpunctuated' || result.rule === 'complete-ending';
    if (lifts && tokens(text).length <= this.#shortAnswerMaxWords && agentAskedQuestion(history)) {
      return { probability: LEXICAL_PROBABILITY.shortAnswer, rule: 'short-answer' };
    }
    return result;
  }

  endOfTurnProbability(input: TurnDetectorInput): number {
    return this.verdict(input.text, input.history).probability;
  }
}
