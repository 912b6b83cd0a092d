import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { definePlaybook, playbookIssuesOf, transitionsFrom, validatePlaybook, type PlaybookIssue } from '../../src/playbook/define.js';
import type { PlaybookDefinition, StageDefinition, TransitionDefinition } from '../../src/playbook/types.js';
import type { Tool } from '../../src/providers/types.js';
import restaurant from '../../examples/playbook-restaurant/playbook.js';

function tool(name: string): Tool {
  return { name, description: `the ${name} tool`, parameters: { type: 'object', properties: {} }, execute: async () => 'ok' };
}

/** A sound three-stage playbook; tests break one thing at a time. */
function base(): PlaybookDefinition {
  return {
    id: 'support',
    initialStage: 'identify',
    globalTools: [tool('lookup_faq')],
    stages: {
      identify: { systemPrompt: 'Ask for the account number.', tools: [tool('find_account')], maxTurns: 3 },
      help: { systemPrompt: 'Solve the problem.', timeoutMs: 60_000 },
      wrap: { systemPrompt: 'Say goodbye.' },
    },
    transitions: [
      { from: 'identify', to: 'help', condition: { type: 'toolCall', tool: 'find_account' } },
      { from: 'identify', to: 'wrap', condition: { type: 'maxTurns' } },
      { from: 'help', to: 'wrap', condition: { type: 'timeout' } },
      { from: 'wrap', to: 'end', condition: { type: 'keyword', keywords: ['bye'] } },
    ],
  };
}

type DraftStage = { -readonly [K in keyof StageDefinition]: StageDefinition[K] };
interface Draft {
  id: string;
  initialStage: string;
  globalTools?: readonly Tool[];
  stages: Record<string, DraftStage>;
  transitions: TransitionDefinition[];
}

/** `base()` as a mutable copy, with `change` applied. */
function broken(change: (draft: Draft) => void): unknown {
  const definition = base();
  const draft: Draft = {
    ...definition,
    stages: Object.fromEntries(Object.entries(definition.stages).map(([id, stage]) => [id, { ...stage }])),
    transitions: definition.transitions.map((transition) => ({ ...transition })),
  };
  change(draft);
  return draft;
}

function pick(issues: readonly PlaybookIssue[]): { code: string; severity: string; stage: string | undefined; field: string | undefined }[] {
  return issues.map(({ code, severity, stage, field }) => ({ code, severity, stage, field }));
}

describe('validatePlaybook', () => {
  it('a sound playbook has no issues; the restaurant example neither', () => {
    expect(validatePlaybook(base())).toEqual([]);
    expect(validatePlaybook(restaurant)).toEqual([]);
  });

  it('a transition to an unknown stage names the transition field and the stage it leaves', () => {
    const issues = validatePlaybook(
      broken((d) => {
        d.transitions.push({ from: 'help', to: 'escalate', condition: { type: 'intent', intent: 'angry', classify: () => undefined } });
      }),
    );
    expect(pick(issues)).toEqual([{ code: 'unknown_stage', severity: 'error', stage: 'help', field: 'transitions[4].to' }]);
    expect(issues[0]?.path).toBe('transitions[4].to');
    expect(issues[0]?.message).toMatch(/'escalate' is not a stage or 'end' \(stages: 'identify', 'help', 'wrap'\)/);
  });

  it('an unknown from and an unknown initialStage are errors', () => {
    const issues = validatePlaybook(
      broken((d) => {
        d.initialStage = 'start';
        d.transitions[0] = { ...d.transitions[0]!, from: 'identfy' };
      }),
    );
    expect(pick(issues)).toContainEqual({ code: 'unknown_initial_stage', severity: 'error', stage: undefined, field: 'initialStage' });
    expect(pick(issues)).toContainEqual({ code: 'unknown_stage', severity: 'error', stage: undefined, field: 'transitions[0].from' });
  });

  it('maxTurns and timeout transitions need the limit on their stage', () => {
    const issues = validatePlaybook(
      broken((d) => {
        delete d.stages['identify']!.maxTurns;
        delete d.stages['help']!.timeoutMs;
      }),
    );
    expect(pick(issues)).toEqual([
      { code: 'max_turns_without_limit', severity: 'error', stage: 'identify', field: 'transitions[1].condition.type' },
      { code: 'timeout_without_limit', severity: 'error', stage: 'help', field: 'transitions[2].condition.type' },
    ]);
  });

  it('a toolCall transition must name a tool of its stage or a global one', () => {
    const issues = validatePlaybook(
      broken((d) => {
        d.transitions.push({ from: 'help', to: 'wrap', condition: { type: 'toolCall', tool: 'find_account' } });
        d.transitions.push({ from: 'help', to: 'wrap', condition: { type: 'toolCall', tool: 'lookup_faq' } });
      }),
    );
    expect(pick(issues)).toEqual([{ code: 'unknown_tool', severity: 'error', stage: 'help', field: 'transitions[4].condition.tool' }]);
    expect(issues[0]?.message).toBe("stage 'help' has no tool 'find_account' (its tools or globalTools)");
  });

  it("a '*' transition applies wherever its condition can fire, and is an error where it can fire nowhere", () => {
    const ok = validatePlaybook(broken((d) => d.transitions.push({ from: '*', to: 'wrap', condition: { type: 'toolCall', tool: 'find_account' } })));
    expect(ok).toEqual([]);
    const issues = validatePlaybook(
      broken((d) => {
        d.transitions.push({ from: '*', to: 'wrap', condition: { type: 'toolCall', tool: 'transfer' } });
        d.transitions.push({ from: '*', to: 'end', condition: { type: 'timeout' } });
        delete d.stages['help']!.timeoutMs;
      }),
    );
    expect(pick(issues)).toEqual([
      { code: 'timeout_without_limit', severity: 'error', stage: 'help', field: 'transitions[2].condition.type' },
      { code: 'unknown_tool', severity: 'error', stage: '*', field: 'transitions[4].condition.tool' },
      { code: 'timeout_without_limit', severity: 'error', stage: '*', field: 'transitions[5].condition.type' },
    ]);
    expect(issues[1]?.message).toBe("no stage has a tool 'transfer'");
  });

  it('duplicate tool names in a stage, or a stage tool named like a global one, are errors', () => {
    const issues = validatePlaybook(
      broken((d) => {
        d.stages['identify']!.tools = [tool('find_account'), tool('find_account')];
        d.stages['help']!.tools = [tool('lookup_faq')];
      }),
    );
    expect(pick(issues)).toEqual([
      { code: 'duplicate_tool', severity: 'error', stage: 'identify', field: 'tools[1]' },
      { code: 'duplicate_tool', severity: 'error', stage: 'help', field: 'tools[0]' },
    ]);
    expect(issues[0]?.path).toBe('stages.identify.tools[1]');
  });

  it('an empty systemPrompt, non-positive limits and a malformed tool are errors of their stage', () => {
    const issues = validatePlaybook(
      broken((d) => {
        d.stages['identify']!.systemPrompt = '  ';
        d.stages['identify']!.maxTurns = 0;
        d.stages['help']!.timeoutMs = -5;
        d.stages['wrap']!.tools = [{ name: 'broken', description: 'x', parameters: {} } as never];
      }),
    );
    expect(pick(issues)).toEqual([
      { code: 'empty_system_prompt', severity: 'error', stage: 'identify', field: 'systemPrompt' },
      { code: 'invalid_limit', severity: 'error', stage: 'identify', field: 'maxTurns' },
      { code: 'invalid_limit', severity: 'error', stage: 'help', field: 'timeoutMs' },
      { code: 'invalid_tool', severity: 'error', stage: 'wrap', field: 'tools[0]' },
    ]);
    expect(issues[3]?.message).toBe("tool 'broken' needs an execute function");
  });

  it('keyword lists must not be empty, llmDecision needs its description, intent and custom their functions', () => {
    const issues = validatePlaybook(
      broken((d) => {
        d.transitions[3] = { from: 'wrap', to: 'end', condition: { type: 'keyword', keywords: [] } };
        d.transitions.push({ from: 'help', to: 'wrap', condition: { type: 'keyword', keywords: ['done', ' '] } });
        d.transitions.push({ from: 'help', to: 'wrap', condition: { type: 'llmDecision', description: '' } });
        d.transitions.push({ from: 'help', to: 'wrap', condition: { type: 'intent', intent: 'done' } as never });
        d.transitions.push({ from: 'help', to: 'wrap', condition: { type: 'custom', label: '', check: () => true } });
        d.transitions.push({ from: 'help', to: 'wrap', condition: { type: 'sentiment' } as never });
        d.transitions.push({ from: 'wrap', to: 'end', condition: { type: 'keyword', keywords: ['ciao'] }, priority: Number.NaN });
      }),
    );
    expect(pick(issues)).toEqual([
      { code: 'empty_keywords', severity: 'error', stage: 'wrap', field: 'transitions[3].condition.keywords' },
      { code: 'empty_keywords', severity: 'error', stage: 'help', field: 'transitions[4].condition.keywords[1]' },
      { code: 'missing_description', severity: 'error', stage: 'help', field: 'transitions[5].condition.description' },
      { code: 'invalid_condition', severity: 'error', stage: 'help', field: 'transitions[6].condition.classify' },
      { code: 'invalid_condition', severity: 'error', stage: 'help', field: 'transitions[7].condition.label' },
      { code: 'invalid_condition', severity: 'error', stage: 'help', field: 'transitions[8].condition.type' },
      { code: 'invalid_priority', severity: 'error', stage: 'wrap', field: 'transitions[9].priority' },
    ]);
  });

  it('toolChoice must name a tool the stage has; required needs tools; reserved stage ids are refused', () => {
    const issues = validatePlaybook(
      broken((d) => {
        d.stages['identify']!.toolChoice = { name: 'transfer' };
        d.stages['wrap']!.toolChoice = 'always' as never;
        d.stages['end'] = { systemPrompt: 'x' };
      }),
    );
    expect(pick(issues)).toEqual([
      { code: 'unknown_tool', severity: 'error', stage: 'identify', field: 'toolChoice.name' },
      { code: 'invalid_value', severity: 'error', stage: 'wrap', field: 'toolChoice' },
      { code: 'reserved_stage_id', severity: 'error', stage: 'end', field: undefined },
    ]);
    const noTools = validatePlaybook({ ...base(), globalTools: [], stages: { ...base().stages, wrap: { systemPrompt: 'x', toolChoice: 'required' } } });
    expect(pick(noTools)).toEqual([{ code: 'tool_choice_without_tools', severity: 'error', stage: 'wrap', field: 'toolChoice' }]);
  });

  it('a stage nothing leads to, and a stage with no way to end, are warnings', () => {
    const issues = validatePlaybook(
      broken((d) => {
        d.stages['orphan'] = { systemPrompt: 'Never entered.' };
        d.stages['trap'] = { systemPrompt: 'Never left.' };
        d.transitions.push({ from: 'help', to: 'trap', condition: { type: 'keyword', keywords: ['stuck'] } });
      }),
    );
    expect(pick(issues)).toEqual([
      { code: 'unreachable_stage', severity: 'warning', stage: 'orphan', field: undefined },
      { code: 'no_path_to_end', severity: 'warning', stage: 'trap', field: undefined },
    ]);
    expect(issues[0]?.path).toBe('stages.orphan');
  });

  it('JavaScript input of the wrong shape is reported, not thrown', () => {
    expect(pick(validatePlaybook(null))).toEqual([{ code: 'invalid_definition', severity: 'error', stage: undefined, field: '' }]);
    expect(pick(validatePlaybook({ id: '', initialStage: 'a', stages: {}, transitions: {} }))).toEqual([
      { code: 'invalid_id', severity: 'error', stage: undefined, field: 'id' },
      { code: 'no_stages', severity: 'error', stage: undefined, field: 'stages' },
      { code: 'unknown_initial_stage', severity: 'error', stage: undefined, field: 'initialStage' },
      { code: 'invalid_definition', severity: 'error', stage: undefined, field: 'transitions' },
    ]);
  });
});

describe('definePlaybook', () => {
  it('throws one ConfigError listing every error, with the issues as its cause', () => {
    const definition = broken((d) => {
      d.stages['help']!.systemPrompt = '';
      d.transitions[0] = { ...d.transitions[0]!, to: 'hlep' };
    });
    let thrown: unknown;
    try {
      definePlaybook(definition as PlaybookDefinition);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const error = thrown as ConfigError;
    expect(error.code).toBe('config_invalid');
    expect(error.field).toBe('playbook');
    expect(error.message).toBe(
      [
        "playbook: 'support' has 2 errors:",
        '  error help.systemPrompt: every stage needs a system prompt (what the LLM is to do in it)',
        "  error identify.transitions[0].to: 'hlep' is not a stage or 'end' (stages: 'identify', 'help', 'wrap')",
      ].join('\n'),
    );
    expect(playbookIssuesOf(error)?.map((issue) => issue.code)).toEqual(['empty_system_prompt', 'unknown_stage', 'unreachable_stage']);
  });

  it('warnings do not throw', () => {
    const definition = broken((d) => {
      d.stages['orphan'] = { systemPrompt: 'Never entered.' };
    });
    expect(definePlaybook(definition as PlaybookDefinition).stageIds).toEqual(['identify', 'help', 'wrap', 'orphan']);
  });

  it('returns a frozen copy with stageIds; tools stay the objects given', () => {
    const definition = base();
    const playbook = definePlaybook(definition);
    expect(playbook.stageIds).toEqual(['identify', 'help', 'wrap']);
    expect(Object.isFrozen(playbook)).toBe(true);
    expect(Object.isFrozen(playbook.stages)).toBe(true);
    expect(Object.isFrozen(playbook.stages['identify'])).toBe(true);
    expect(Object.isFrozen(playbook.transitions)).toBe(true);
    expect(Object.isFrozen(playbook.transitions[3]?.condition)).toBe(true);
    expect(() => (playbook.transitions as unknown[]).push({})).toThrow(TypeError);
    expect(playbook.stages['identify']?.tools?.[0]).toBe(definition.stages['identify']?.tools?.[0]);
    expect(playbook).not.toBe(definition);
    // A playbook can be checked again (loadPlaybookModule does).
    expect(definePlaybook(playbook).stageIds).toEqual(playbook.stageIds);
  });
});

describe('transitionsFrom', () => {
  it("orders a stage's transitions by priority then definition; '*' applies in every stage but its target where it can fire", () => {
    const playbook = definePlaybook({
      ...base(),
      transitions: [
        ...base().transitions,
        { from: '*', to: 'wrap', condition: { type: 'keyword', keywords: ['cancel'] }, priority: 10 },
        { from: '*', to: 'end', condition: { type: 'maxTurns' } },
      ],
    });
    expect(transitionsFrom(playbook, 'identify').map((t) => t.index)).toEqual([4, 0, 1, 5]);
    expect(transitionsFrom(playbook, 'help').map((t) => t.index)).toEqual([4, 2]);
    expect(transitionsFrom(playbook, 'wrap').map((t) => t.index)).toEqual([3]);
  });
});
