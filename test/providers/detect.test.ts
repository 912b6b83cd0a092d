import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { detectProviders } from '../../src/providers/detect.js';
import { ScriptedAgent } from '../../src/providers/local/index.js';
import type { LlmProvider } from '../../src/providers/types.js';

const dir = mkdtempSync(join(tmpdir(), 'voxstate-detect-'));
const keyFile = join(dir, 'sa.json');
writeFileSync(keyFile, JSON.stringify({ type: 'service_account', client_email: 'x@y.iam.gserviceaccount.com', private_key: 'PRIVATE' }));
const notJson = join(dir, 'bad.json');
writeFileSync(notJson, 'not json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = 'sk-secret-value-1234567890';

function logged(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      text += String(chunk);
      callback();
    },
  });
  return {
    logger: createLogger({ destination, level: 'info' }),
    lines: () => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const names = (env: NodeJS.ProcessEnv) => Object.fromEntries(detectProviders(env).choices.map((c) => [c.kind, c.name]));

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('detectProviders', () => {
  it('with nothing configured: pocketsphinx, the scripted agent and Flite', () => {
    const { choices, providers } = detectProviders({});
    expect(choices.map((c) => [c.kind, c.name])).toEqual([
      ['stt', 'pocketsphinx'],
      ['llm', 'scripted-agent'],
      ['tts', 'flite:slt'],
    ]);
    expect(providers.llm).toBeInstanceOf(ScriptedAgent);
    expect(choices[1]?.reason).toMatch(/no LLM configured/);
  });

  it('OPENAI_API_KEY: OpenAI for all three, and one log line per choice without the key', () => {
    const { logger, lines } = logged();
    const { choices } = detectProviders({ OPENAI_API_KEY: KEY }, {}, logger);
    expect(choices.map((c) => c.name)).toEqual(['openai:gpt-4o-mini-transcribe', 'openai:gpt-4o-mini', 'openai:gpt-4o-mini-tts']);
    const records = lines();
    expect(records).toHaveLength(3);
    expect(records.map((r) => r['reason'])).toEqual(choices.map((c) => c.reason));
    expect(JSON.stringify(records)).not.toContain(KEY);
  });

  it('the scripted agent is never picked when an LLM is configured', () => {
    for (const env of [{ OPENAI_API_KEY: KEY }, { OPENAI_BASE_URL: 'http://127.0.0.1:1234/v1' }, { OLLAMA_MODEL: 'qwen2.5' }, { OLLAMA_BASE_URL: 'http://127.0.0.1:11434' }])
      expect(detectProviders(env).providers.llm, JSON.stringify(env)).not.toBeInstanceOf(ScriptedAgent);
  });

  it('OLLAMA_BASE_URL / OLLAMA_MODEL: an OpenAI-compatible LLM at /v1, local voice', () => {
    const { choices } = detectProviders({ OLLAMA_BASE_URL: 'http://127.0.0.1:11434/', OLLAMA_MODEL: 'qwen2.5:3b' });
    expect(choices.find((c) => c.kind === 'llm')).toMatchObject({ name: 'ollama:qwen2.5:3b', reason: expect.stringContaining('http://127.0.0.1:11434') });
    expect(names({ OLLAMA_MODEL: 'x' })).toMatchObject({ stt: 'pocketsphinx', tts: 'flite:slt' });
  });

  it('OPENAI_BASE_URL alone is used for the LLM only; its credentials are not logged', () => {
    const { choices } = detectProviders({ OPENAI_BASE_URL: 'http://user:hunter2@127.0.0.1:8080/v1?token=abc', OPENAI_MODEL: 'local-model' });
    expect(choices.map((c) => c.name)).toEqual(['pocketsphinx', 'openai:local-model', 'flite:slt']);
    expect(JSON.stringify(choices)).not.toMatch(/hunter2|token=abc/);
  });

  it('GOOGLE_APPLICATION_CREDENTIALS: Google STT (streaming) and, without OpenAI, Google TTS', () => {
    expect(names({ GOOGLE_APPLICATION_CREDENTIALS: keyFile })).toEqual({ stt: 'google-stt', llm: 'scripted-agent', tts: 'google-tts' });
    expect(names({ GOOGLE_APPLICATION_CREDENTIALS: keyFile, OPENAI_API_KEY: KEY })).toEqual({
      stt: 'google-stt',
      llm: 'openai:gpt-4o-mini',
      tts: 'openai:gpt-4o-mini-tts',
    });
  });

  it('VOXSTATE_* force a provider', () => {
    expect(names({ OPENAI_API_KEY: KEY, VOXSTATE_STT: 'local', VOXSTATE_TTS: 'local' })).toEqual({
      stt: 'pocketsphinx',
      llm: 'openai:gpt-4o-mini',
      tts: 'flite:slt',
    });
    expect(names({ OPENAI_API_KEY: KEY, GOOGLE_APPLICATION_CREDENTIALS: keyFile, VOXSTATE_STT: 'openai', VOXSTATE_TTS: 'google' })).toMatchObject({
      stt: 'openai:gpt-4o-mini-transcribe',
      tts: 'google-tts',
    });
    expect(names({ OPENAI_API_KEY: KEY, VOXSTATE_LLM: 'scripted' }).llm).toBe('scripted-agent');
  });

  it('explicit providers always win', () => {
    const mine: LlmProvider = { name: 'mine', stream: async function* () {} };
    const { providers, choices } = detectProviders({ OPENAI_API_KEY: KEY, VOXSTATE_LLM: 'openai' }, { llm: mine });
    expect(providers.llm).toBe(mine);
    expect(choices.find((c) => c.kind === 'llm')).toEqual({ kind: 'llm', name: 'mine', reason: 'given explicitly in the configuration' });
  });

  it('fails at start-up with a ConfigError naming the variable', () => {
    expect(configError(() => detectProviders({ VOXSTATE_STT: 'google' })).field).toBe('GOOGLE_APPLICATION_CREDENTIALS');
    const missing = configError(() => detectProviders({ GOOGLE_APPLICATION_CREDENTIALS: join(dir, 'nope.json') }));
    expect(missing.field).toBe('GOOGLE_APPLICATION_CREDENTIALS');
    expect(missing.message).toMatch(/file not found/);
    expect(configError(() => detectProviders({ GOOGLE_APPLICATION_CREDENTIALS: notJson })).message).toMatch(/not a JSON/);
    expect(configError(() => detectProviders({ VOXSTATE_LLM: 'openai' })).field).toBe('OPENAI_API_KEY');
    expect(configError(() => detectProviders({ VOXSTATE_TTS: 'openai' })).field).toBe('OPENAI_API_KEY');
    expect(configError(() => detectProviders({ VOXSTATE_TTS: 'scripted' })).field).toBe('VOXSTATE_TTS');
    expect(configError(() => detectProviders({ VOXSTATE_LLM: 'gpt' })).field).toBe('VOXSTATE_LLM');
    expect(configError(() => detectProviders({ OPENAI_BASE_URL: 'not a url' })).field).toBe('OPENAI_BASE_URL');
    expect(configError(() => detectProviders({ OLLAMA_BASE_URL: 'ftp://x' })).field).toBe('OLLAMA_BASE_URL');
  });

  it('error messages never contain the private key', () => {
    try {
      detectProviders({ GOOGLE_APPLICATION_CREDENTIALS: join(dir, 'nope.json'), OPENAI_API_KEY: KEY });
    } catch (error) {
      expect(String(error)).not.toContain(KEY);
      expect(String(error)).not.toContain('PRIVATE');
    }
  });
});
