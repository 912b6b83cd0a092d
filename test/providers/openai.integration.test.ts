/** Against the real OpenAI API; runs only with OPENAI_API_KEY (npm run test:integration). */
import { describe, expect, it } from 'vitest';
import { OpenAiLlm, OpenAiStt, OpenAiTts } from '../../src/providers/openai/index.js';
import { FliteTts } from '../../src/providers/local/index.js';
import { int16ToFloat32 as int16ToFloat } from '../../src/audio/frame.js';
import type { LlmEvent } from '../../src/providers/types.js';

const key = process.env['OPENAI_API_KEY'];
const signal = (): AbortSignal => AbortSignal.timeout(55_000);

describe.skipIf(!key)('OpenAI (real service)', () => {
  it('streams a chat completion with usage', async () => {
    const llm = new OpenAiLlm({ model: process.env['OPENAI_MODEL'] ?? 'gpt-4o-mini', maxTokens: 20 });
    const events: LlmEvent[] = [];
    for await (const e of llm.stream({ messages: [{ role: 'user', content: 'Say "pong" and nothing else.' }], signal: signal() })) events.push(e);
    expect(events.filter((e) => e.type === 'text').map((e) => (e.type === 'text' ? e.text : '')).join('').toLowerCase()).toContain('pong');
    expect(events.some((e) => e.type === 'usage')).toBe(true);
  });

  it('calls two tools in parallel', async () => {
    const llm = new OpenAiLlm({ parallelToolCalls: true });
    const tool = (name: string) => ({ name, description: `Get the ${name} for a city`, parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } });
    const calls: LlmEvent[] = [];
    for await (const e of llm.stream({
      messages: [{ role: 'user', content: 'Get the weather and the local time in Paris. Use both tools at once.' }],
      tools: [tool('weather'), tool('local_time')],
      signal: signal(),
    }))
      if (e.type === 'tool_call') calls.push(e);
    expect(calls.length).toBeGreaterThanOrEqual(2);
    for (const c of calls) if (c.type === 'tool_call') expect(JSON.parse(c.call.arguments)).toHaveProperty('city');
  });

  it('speaks 24 kHz PCM and transcribes it back', async () => {
    const tts = new OpenAiTts();
    const chunks: Int16Array[] = [];
    for await (const c of tts.synthesize('Book a table for two people tomorrow at seven.', { signal: signal() })) {
      expect(c.sampleRate).toBe(24_000);
      chunks.push(c.pcm);
    }
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBeGreaterThan(24_000);
    // STT wants 16 kHz: use Flite's 16 kHz speech rather than resampling here.
    const flite = new FliteTts({ voice: 'kal16' });
    const pcm: Int16Array[] = [];
    for await (const c of flite.synthesize('book a table for two people', { signal: signal() })) pcm.push(c.pcm);
    await flite.close();
    const all = new Int16Array(pcm.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of pcm) {
      all.set(c, o);
      o += c.length;
    }
    const { text } = await new OpenAiStt().transcribe({ samples: int16ToFloat(all), sampleRate: 16_000 }, { signal: signal(), language: 'en' });
    expect(text.toLowerCase()).toMatch(/table/);
  });
});
