import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { definePlaybook } from '../../src/playbook/define.js';
import type { Playbook } from '../../src/playbook/types.js';

// Type-level checks (tsc -p tsconfig.json covers test files); each one that must not compile is
// also refused at run time, for JavaScript users.
describe('definePlaybook types', () => {
  it('infers stage ids from the stages keys, and types hooks and conditions with them', () => {
    const playbook = definePlaybook({
      id: 'typed',
      initialStage: 'greet',
      stages: {
        greet: {
          systemPrompt: 'Greet.',
          onEnter: (context) => {
            const stage: 'greet' = context.stage;
            void stage;
          },
        },
        done: { systemPrompt: 'Bye.' },
      },
      transitions: [
        { from: 'greet', to: 'done', condition: { type: 'keyword', keywords: ['bye'] } },
        { from: '*', to: 'end', condition: { type: 'intent', intent: 'hang up', classify: (text, context) => (context.stage === 'done' && text ? 'hang up' : undefined) } },
      ],
    });
    const ids: readonly ('greet' | 'done')[] = playbook.stageIds;
    // A typed playbook is a Playbook: the runtime and VoiceServer take any of them.
    const any: Playbook = playbook;
    expect([ids, any.id]).toEqual([['greet', 'done'], 'typed']);
  });

  it("each stage's data type is inferred and types its hooks; data that cannot be kept is refused", () => {
    const seen: number[] = [];
    const playbook = definePlaybook({
      id: 'typed-data',
      initialStage: 'party',
      stages: {
        party: {
          systemPrompt: 'Ask how many.',
          data: { sizes: [] as number[], note: '' },
          onEnter: ({ data, setData }) => {
            seen.push(data.sizes.length);
            setData({ sizes: [...data.sizes, 2], note: data.note });
            // @ts-expect-error the party stage's data has no 'day'
            void data.day;
            // @ts-expect-error setData takes the stage's own data type
            setData({ day: 'monday' });
          },
        },
        when: {
          systemPrompt: 'Ask when.',
          data: { day: 'today' as 'today' | 'tomorrow' },
          onExit: ({ data }) => {
            const day: 'today' | 'tomorrow' = data.day;
            void day;
          },
        },
      },
      transitions: [{ from: 'party', to: 'when', condition: { type: 'keyword', keywords: ['ok'] } }, { from: 'when', to: 'end', condition: { type: 'keyword', keywords: ['bye'] } }],
    });
    expect(playbook.stages.party.data).toEqual({ sizes: [], note: '' });
    expect(() =>
      definePlaybook({
        id: 'x',
        initialStage: 'greet',
        stages: { greet: { systemPrompt: 'Greet.', data: { socket: () => undefined } } },
        transitions: [{ from: 'greet', to: 'end', condition: { type: 'keyword', keywords: ['bye'] } }],
      }),
    ).toThrow(/greet\.data: cannot be kept with the session/);
  });

  it('an unknown stage in initialStage, from or to does not compile, and throws', () => {
    expect(() =>
      definePlaybook({
        id: 'x',
        // @ts-expect-error 'start' is not a stage
        initialStage: 'start',
        stages: { greet: { systemPrompt: 'Greet.' } },
        transitions: [{ from: 'greet', to: 'end', condition: { type: 'keyword', keywords: ['bye'] } }],
      }),
    ).toThrow(ConfigError);
    expect(() =>
      definePlaybook({
        id: 'x',
        initialStage: 'greet',
        stages: { greet: { systemPrompt: 'Greet.' }, done: { systemPrompt: 'Bye.' } },
        // @ts-expect-error 'confrim' is not a stage
        transitions: [{ from: 'greet', to: 'confrim', condition: { type: 'keyword', keywords: ['yes'] } }],
      }),
    ).toThrow(/'confrim' is not a stage or 'end'/);
    expect(() =>
      definePlaybook({
        id: 'x',
        initialStage: 'greet',
        stages: { greet: { systemPrompt: 'Greet.' } },
        // @ts-expect-error 'gret' is not a stage (nor '*')
        transitions: [{ from: 'gret', to: 'end', condition: { type: 'maxTurns' } }],
      }),
    ).toThrow(/'gret' is not a stage or '\*'/);
  });

  it("'end' and '*' cannot name a stage; a condition needs its fields", () => {
    expect(() =>
      definePlaybook({
        id: 'x',
        initialStage: 'greet',
        // @ts-expect-error 'end' is reserved for transitions
        stages: { greet: { systemPrompt: 'Greet.' }, end: { systemPrompt: 'No.' } },
        transitions: [{ from: 'greet', to: 'end', condition: { type: 'keyword', keywords: ['bye'] } }],
      }),
    ).toThrow(/reserved/);
    expect(() =>
      definePlaybook({
        id: 'x',
        initialStage: 'greet',
        stages: { greet: { systemPrompt: 'Greet.' } },
        // @ts-expect-error an llmDecision needs its description
        transitions: [{ from: 'greet', to: 'end', condition: { type: 'llmDecision' } }],
      }),
    ).toThrow(/description/);
  });
});
