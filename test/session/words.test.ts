import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKCHANNEL_WORDS, substantiveWordCount, words } from '../../machines/words.js';

describe('words and backchannels', () => {
  it('splits on white space', () => {
    expect(words('  one two\tthree\n')).toEqual(['one', 'two', 'three']);
  });

  it.each([
    ['yeah', 0],
    ['Yeah.', 0],
    ['uh huh', 0],
    ['Uh-huh!', 0],
    ['mm hmm, okay, got it', 0],
    ['I see. Right, sure.', 0],
    ['yeah but wait', 2],
    ['no stop', 2],
    ['okay so what about Friday', 4],
    ['I seem lost', 3],
  ])('%j has %i words that are not backchannels', (text, count) => {
    expect(substantiveWordCount(text, DEFAULT_BACKCHANNEL_WORDS)).toBe(count);
  });

  it('takes a custom list (phrases match whole word sequences)', () => {
    expect(substantiveWordCount('d’accord oui', ['oui', 'd’accord'])).toBe(0);
    expect(substantiveWordCount('got it wrong', ['got it'])).toBe(1);
    expect(substantiveWordCount('yeah', [])).toBe(1);
  });
});
