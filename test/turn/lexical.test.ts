import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import type { ChatMessage } from '../../src/providers/types.js';
import {
  DEFAULT_INCOMPLETE_ENDINGS,
  LexicalTurnDetector,
  lexicalEndOfTurn,
  lexicalVerdict,
  type LexicalRule,
} from '../../src/turn/index.js';
import { turnInput } from './doubles.js';

type Row = readonly [text: string, rule: LexicalRule, probability: number];

describe('lexicalEndOfTurn', () => {
  const complete: Row[] = [
    ['I would like to book a table for four.', 'sentence-end', 1],
    ['Can I book a table for tonight?', 'sentence-end', 1],
    ['Stop!', 'sentence-end', 1],
    ['What are you looking for?', 'sentence-end', 1],
    ['Turn it on.', 'sentence-end', 1],
    ['i would like to book a table for four', 'unpunctuated', 0.85],
    ['what time do you open tomorrow', 'unpunctuated', 0.85],
    ['four', 'unpunctuated', 0.85],
    ['yes please', 'unpunctuated', 0.85],
    ['thank you', 'unpunctuated', 0.85],
    ['i think so', 'complete-ending', 0.85],
    ['hold on', 'complete-ending', 0.85],
    ['yes i would', 'complete-ending', 0.85],
    ["i'd like that", 'complete-ending', 0.85],
  ];
  const incomplete: Row[] = [
    // trailing marks
    ['I would like to book a table for four,', 'trailing-mark', 0],
    ['My options are:', 'trailing-mark', 0],
    ['first the soup;', 'trailing-mark', 0],
    ['I was thinking -', 'trailing-mark', 0],
    ['I was thinking —', 'trailing-mark', 0],
    ['so maybe…', 'trailing-mark', 0],
    ['so maybe...', 'trailing-mark', 0],
    ['Can we do it tomor-', 'cut-off-word', 0],
    // conjunctions
    ['I want the soup and', 'incomplete-ending', 0],
    ['tea or', 'incomplete-ending', 0],
    ['it is good but', 'incomplete-ending', 0],
    ['I called because', 'incomplete-ending', 0],
    ['we can go if', 'incomplete-ending', 0],
    ['and then', 'incomplete-ending', 0],
    ['it is bigger than', 'incomplete-ending', 0],
    ['the one which', 'incomplete-ending', 0],
    // prepositions
    ['I would like to book a table for', 'incomplete-ending', 0],
    ['I would like to', 'incomplete-ending', 0],
    ['a glass of', 'incomplete-ending', 0],
    ['we will arrive at', 'incomplete-ending', 0],
    ['coffee with', 'incomplete-ending', 0],
    ['tell me about', 'incomplete-ending', 0],
    // articles, determiners, possessives
    ['I will have the', 'incomplete-ending', 0],
    ['give me a', 'incomplete-ending', 0],
    ['it was an', 'incomplete-ending', 0],
    ['it is for my', 'incomplete-ending', 0],
    ['is that your', 'incomplete-ending', 0],
    // auxiliaries and contractions
    ['the problem is', 'incomplete-ending', 0],
    ['the rooms are', 'incomplete-ending', 0],
    ['the best day would', 'incomplete-ending', 0],
    ["and then I'm", 'incomplete-ending', 0],
    // fillers and hedges
    ['I want um', 'incomplete-ending', 0],
    ['so uh', 'incomplete-ending', 0],
    ['Maybe, er', 'incomplete-ending', 0],
    ['it was like', 'incomplete-ending', 0],
    ['it is you know', 'incomplete-ending', 0],
    ['it is kind of', 'incomplete-ending', 0],
    // multiword connectives
    ['something sweet such as', 'incomplete-ending', 0],
    ['the cake as well as', 'incomplete-ending', 0],
  ];
  const pending: Row[] = [
    ['I would like to book', 'pending-ending', 0.3],
    ['I want', 'pending-ending', 0.3],
    ['we need', 'pending-ending', 0.3],
    ['can I get', 'pending-ending', 0.3],
    ['can you', 'pending-ending', 0.3],
    ['could you tell me', 'pending-ending', 0.3],
  ];

  it.each([...complete, ...incomplete, ...pending])('%j → %s (%d)', (text, rule, probability) => {
    expect(lexicalVerdict(text)).toMatchObject({ rule, probability });
    expect(lexicalEndOfTurn(text)).toBe(probability);
  });

  it("the issue's example: the table for … is incomplete, the table for four is complete", () => {
    expect(lexicalEndOfTurn('I would like to book a table for')).toBe(0);
    expect(lexicalEndOfTurn('I would like to book a table for four')).toBeGreaterThanOrEqual(0.85);
    expect(lexicalEndOfTurn('I would like to book a table for four.')).toBe(1);
  });

  it('names the ending that decided', () => {
    expect(lexicalVerdict('a table for').ending).toBe('for');
    expect(lexicalVerdict('something such as').ending).toBe('such as');
    expect(lexicalVerdict('Can we do it tomor-').ending).toBe('tomor-');
    expect(lexicalVerdict('well,').ending).toBe(',');
    expect(lexicalVerdict('Really?').ending).toBe('?');
  });

  it.each([
    ['', 'no-words'],
    ['   ', 'no-words'],
    ['...', 'no-words'],
    ['?', 'no-words'],
    ['[noise]', 'no-words'],
  ] as const)('%j has no words: 0.5 (unknown)', (text, rule) => {
    expect(lexicalVerdict(text)).toEqual({ probability: 0.5, rule });
  });

  it.each([
    ['A TABLE FOR', 0],
    ['A Table For Four', 0.85],
    ['  a table for  \n', 0],
    ['a table for four. \t', 1],
    ['"a table for four."', 1],
    ['He said “a table for”', 0],
    ['(a table for four?)', 1],
    ['a table   for\tfour', 0.85],
    ['a table for [noise]', 0],
    ['a table for <unk>', 0],
    ['I’d', 0],
    ["'cause", 0],
    ['Okay. I want the soup and', 0],
    ['I want the soup and, you know,', 0],
    ['um, a table, for', 0],
    ['a table for four …', 0],
  ])('is robust to case, quotes, brackets and white space: %j → %d', (text, probability) => {
    expect(lexicalEndOfTurn(text)).toBe(probability);
  });

  it('is total: any string gets one of the rule probabilities, and trailing white space or quotes change nothing', () => {
    const allowed = new Set([0, 0.3, 0.5, 0.85, 1]);
    const alphabet = fc.constantFrom('a', 'for', 'the', 'so', 'think', ' ', '\t', ',', '.', '?', '-', '…', '"', '’', '[', ']', 'É', '4');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 12 }).map((parts) => parts.join('')), fc.constantFrom('', ' ', '"', ' ”\n'), (text, tail) => {
        const p = lexicalEndOfTurn(text);
        expect(allowed.has(p)).toBe(true);
        expect(lexicalEndOfTurn(text + tail)).toBe(p);
      }),
    );
    fc.assert(fc.property(fc.string(), (text) => allowed.has(lexicalEndOfTurn(text))));
  });

  it('takes the longest listed ending: a complete phrase overrides a shorter incomplete one, and back', () => {
    expect(lexicalVerdict('i think so')).toMatchObject({ rule: 'complete-ending', ending: 'think so' });
    expect(lexicalVerdict('and so')).toMatchObject({ rule: 'incomplete-ending', ending: 'so' });
    expect(lexicalVerdict('do you know')).toMatchObject({ rule: 'complete-ending', ending: 'do you know' });
    expect(lexicalVerdict('it is you know')).toMatchObject({ rule: 'incomplete-ending', ending: 'you know' });
  });

  it('a custom list replaces the default; spreading the default extends it', () => {
    const french = { incompleteEndings: ['et', 'pour', 'le', 'la', 'de', "d'accord mais"], pendingEndings: [], completeEndings: [] };
    expect(lexicalEndOfTurn('une table pour', french)).toBe(0);
    expect(lexicalEndOfTurn('une table pour quatre', french)).toBe(0.85);
    expect(lexicalEndOfTurn('d’accord mais', french)).toBe(0);
    expect(lexicalEndOfTurn('a table for', french)).toBe(0.85);

    const extended = { incompleteEndings: [...DEFAULT_INCOMPLETE_ENDINGS, 'gonna'] };
    expect(lexicalEndOfTurn("we're gonna", extended)).toBe(0);
    expect(lexicalEndOfTurn('a table for', extended)).toBe(0);
    expect(lexicalEndOfTurn('I would like to book', extended)).toBe(0.3);
  });

  it('an incomplete entry beats the same entry in another list', () => {
    expect(lexicalVerdict('i want', { incompleteEndings: ['want'] }).rule).toBe('incomplete-ending');
    expect(lexicalVerdict('hold on', { incompleteEndings: ['hold on'] }).rule).toBe('incomplete-ending');
  });

  it('rejects an empty entry with a ConfigError naming it', () => {
    expect(() => lexicalEndOfTurn('x', { incompleteEndings: ['and', ' '] })).toThrow(ConfigError);
    expect(() => lexicalEndOfTurn('x', { pendingEndings: ['...'] })).toThrow(/pendingEndings\[0\]/);
    expect(() => new LexicalTurnDetector({ completeEndings: ['ok', ''] })).toThrow(/completeEndings\[1\]/);
  });
});

describe('LexicalTurnDetector', () => {
  const asked: ChatMessage[] = [
    { role: 'user', content: 'I would like to book a table' },
    { role: 'assistant', content: 'Sure. For how many?' },
  ];
  const told: ChatMessage[] = [
    { role: 'user', content: 'I would like to book a table' },
    { role: 'assistant', content: 'Sure, I can do that.' },
  ];

  it("is named 'lexical' and answers synchronously from the text", () => {
    const detector = new LexicalTurnDetector();
    expect(detector.name).toBe('lexical');
    expect(detector.endOfTurnProbability(turnInput({ text: 'a table for' }))).toBe(0);
    expect(detector.endOfTurnProbability(turnInput({ text: 'a table for four.' }))).toBe(1);
  });

  it('a short answer to the agent’s question is complete (1); the same words without a question stay 0.85', () => {
    const detector = new LexicalTurnDetector();
    expect(detector.verdict('four', asked)).toEqual({ probability: 1, rule: 'short-answer' });
    expect(detector.verdict('yes i would', asked)).toEqual({ probability: 1, rule: 'short-answer' });
    expect(detector.endOfTurnProbability(turnInput({ text: 'four', history: asked }))).toBe(1);
    expect(detector.endOfTurnProbability(turnInput({ text: 'four', history: told }))).toBe(0.85);
    expect(detector.endOfTurnProbability(turnInput({ text: 'four' }))).toBe(0.85);
  });

  it('the short-answer rule never lifts an incomplete or pending ending, nor a long answer', () => {
    const detector = new LexicalTurnDetector();
    expect(detector.verdict('for', asked).probability).toBe(0);
    expect(detector.verdict('i want', asked).probability).toBe(0.3);
    expect(detector.verdict('it will be four of us tonight', asked).probability).toBe(0.85);
  });

  it('looks past system and tool messages and empty tool-call steps for the question', () => {
    const detector = new LexicalTurnDetector();
    const history: ChatMessage[] = [
      { role: 'assistant', content: 'Which day?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 't1', name: 'calendar', arguments: '{}' }] },
      { role: 'tool', toolCallId: 't1', name: 'calendar', content: '{"free":["mon"]}' },
      { role: 'system', content: 'Be brief.' },
    ];
    expect(detector.verdict('monday', history).rule).toBe('short-answer');
    expect(detector.verdict('monday', [...history, { role: 'user', content: 'hmm' }]).rule).toBe('unpunctuated');
  });

  it('shortAnswerMaxWords bounds the rule and 0 turns it off', () => {
    expect(new LexicalTurnDetector({ shortAnswerMaxWords: 1 }).verdict('four people', asked).probability).toBe(0.85);
    expect(new LexicalTurnDetector({ shortAnswerMaxWords: 2 }).verdict('four people', asked).probability).toBe(1);
    expect(new LexicalTurnDetector({ shortAnswerMaxWords: 0 }).verdict('four', asked).probability).toBe(0.85);
    expect(() => new LexicalTurnDetector({ shortAnswerMaxWords: -1 })).toThrow(/shortAnswerMaxWords/);
    expect(() => new LexicalTurnDetector({ shortAnswerMaxWords: 1.5 })).toThrow(ConfigError);
  });

  it('uses its configured lists', () => {
    const detector = new LexicalTurnDetector({ incompleteEndings: ['pour'] });
    expect(detector.endOfTurnProbability(turnInput({ text: 'une table pour' }))).toBe(0);
    expect(detector.endOfTurnProbability(turnInput({ text: 'a table for' }))).toBe(0.85);
  });
});
