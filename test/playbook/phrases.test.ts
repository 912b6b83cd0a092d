import { describe, expect, it } from 'vitest';
import playbook from '../../examples/playbook-restaurant/playbook.js';
import { playbookPhrases } from '../../src/cli/serve.js';
import { validatePlaybook } from '../../src/playbook/index.js';

describe('playbook phrases (the offline recognizer’s vocabulary)', () => {
  it('are the playbook’s phrases and its keyword transitions’ keywords, once each', () => {
    const phrases = playbookPhrases(playbook);
    expect(phrases).toContain('there will be four of us');
    expect(phrases).toContain('never mind'); // a keyword of the cancel transition
    expect(new Set(phrases).size).toBe(phrases.length);
  });

  it('must be non-empty strings', () => {
    const issues = validatePlaybook({ ...playbook, phrases: ['ok', ''] });
    expect(issues).toContainEqual(expect.objectContaining({ code: 'invalid_value', field: 'phrases' }));
  });
});
