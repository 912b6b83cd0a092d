import { describe, expect, it } from 'vitest';
import { resolveSessionSettings } from '../../src/session/config.js';
import { ConfigError } from '../../src/errors.js';
import { createSession } from '../../src/session/session.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';

describe('session configuration', () => {
  it('fills in the documented defaults', () => {
    const settings = resolveSessionSettings();
    expect(settings).toMatchObject({ minInterruptionMs: 600, minInterruptionWords: 0, falseInterruptionTimeoutMs: 600, sessionTtlMs: 60_000 });
    expect(settings.backchannelWords).toEqual(['yeah', 'yes', 'yep', 'uh-huh', 'mm-hmm', 'okay', 'ok', 'right', 'sure', 'i see', 'got it']);
    expect(settings.reply.ttsLookahead).toBe(1);
  });

  it.each([
    [{ minInterruptionMs: -1 }, 'minInterruptionMs'],
    [{ sessionTtlMs: 0 }, 'sessionTtlMs'],
    [{ falseInterruptionTimeoutMs: Number.NaN }, 'falseInterruptionTimeoutMs'],
    [{ minInterruptionWords: 1.5 }, 'minInterruptionWords'],
    [{ backchannelWords: ['yeah', ' '] }, 'backchannelWords[1]'],
    [{ backchannelWords: 'yeah' as unknown as string[] }, 'backchannelWords'],
    [{ reply: { maxToolRounds: 0 } }, 'reply.maxToolRounds'],
    [{ history: { maxMessages: '10' as unknown as number } }, 'history.maxMessages'],
  ])('rejects %j with a ConfigError naming %s', (options, field) => {
    expect(() => resolveSessionSettings(options)).toThrow(ConfigError);
    try {
      resolveSessionSettings(options);
    } catch (error) {
      expect((error as ConfigError).field).toBe(field);
      expect((error as ConfigError).code).toBe('config_invalid');
    }
  });

  it('rejects providers that do not implement the contracts, naming the provider', () => {
    const output = { sampleRate: 24_000, send: () => undefined };
    const stt = new FakeStt({ recognize: () => '' });
    expect(() =>
      createSession({ providers: { stt, llm: {} as never, tts: new FakeTts() }, output, resumeToken: 't' }),
    ).toThrow(/providers\.llm/);
    expect(() =>
      createSession({ providers: { stt, llm: new FakeLlm({ respond: () => [] }), tts: { name: 'x' } as never }, output, resumeToken: 't' }),
    ).toThrow(/providers\.tts/);
  });
});
