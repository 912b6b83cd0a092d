import { describe, expect, it } from 'vitest';
import { cutSegments } from '../../machines/segments.js';

describe('cutSegments', () => {
  it('cuts complete sentences and keeps the unfinished rest', () => {
    expect(cutSegments('Sure, I can help with that. What time would you', false)).toEqual({
      segments: ['Sure, I can help with that.'],
      rest: ' What time would you',
    });
  });

  it('does not cut after abbreviations, initials or decimals', () => {
    const { segments } = cutSegments('Dr. Smith will see you at 3.5 past. J. Doe is next! ', false);
    expect(segments).toEqual(['Dr. Smith will see you at 3.5 past.', 'J. Doe is next!']);
  });

  it('merges very short sentences into the next one and flushes the rest when final', () => {
    expect(cutSegments('Hi. How are you today? Fine', true).segments).toEqual(['Hi. How are you today?', 'Fine']);
  });

  it('cuts long sentences at a clause boundary', () => {
    const long = `${'word '.repeat(40)}and then, more words follow here. `;
    const { segments } = cutSegments(long, false, { minChars: 12, maxChars: 100 });
    expect(segments).toHaveLength(2);
    expect(segments[0]?.endsWith(',')).toBe(true);
  });
});
