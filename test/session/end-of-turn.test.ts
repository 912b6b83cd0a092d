/**
 * The end-of-turn decision, speculative replies, the recognizer's fallbacks and user idle — in
 * virtual time, with the real VAD turn detector (src/vad/speech-detector.ts) deciding every vad.*
 * event and a streaming fake recognizer that, like Google's, closes a segment 150 ms of audio after
 * the voice stops.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, ProviderError } from '../../src/errors.js';
import type { SttProvider } from '../../src/providers/types.js';
import { resolveSessionSettings } from '../../src/session/config.js';
import { Simulation } from '../../src/testing/index.js';
import { scriptedTurnDetector } from '../turn/doubles.js';

const one = (text: string) => () => [text];

describe('end of turn', () => {
  it('a batch recognizer: the turn ends at the VAD end of speech (minSilenceMs), decided by silence', async () => {
    const sim = new Simulation().start();
    await sim.say('book a table for two', 800);
    await sim.advance(3_000);
    const [endpoint] = sim.emitted('turn.endpoint');
    expect(endpoint?.by).toBe('silence');
    expect(endpoint?.endpointingMs).toBe(480);
    expect(sim.history[0]).toEqual({ role: 'user', content: 'book a table for two' });
  });

  it('a streaming recognizer: a complete sentence ends after minEndpointingMs of silence, before the VAD end of speech', async () => {
    const sim = new Simulation({ stt: { streaming: true }, session: { preemptive: false }, respond: one('Done.') }).start();
    await sim.say('Book a table for two.', 800);
    await sim.advance(3_000);
    const [endpoint] = sim.emitted('turn.endpoint');
    expect(endpoint).toMatchObject({ by: 'detector', probability: 1 });
    // The decision is made on the audio clock: 200 ms after the last voiced window.
    expect(endpoint?.endpointingMs).toBe(200);
    const turnStart = sim.records.find((r) => r.kind === 'emit' && r.event.type === 'turn.start');
    const speechEnd = sim.records.find((r) => r.kind === 'emit' && r.event.type === 'vad.speechEnd');
    expect(turnStart!.seq).toBeLessThan(speechEnd!.seq);
    expect(sim.emitted('transcript.final')).toEqual([{ type: 'transcript.final', text: 'Book a table for two.' }]);
  });

  it('a thinking pause after "…a table for" stays one turn: the lexical detector waits, the user goes on', async () => {
    const sim = new Simulation({ stt: { streaming: true }, respond: one('Done.') }).start();
    await sim.say('I would like to book a table for', 1_200);
    await sim.advance(700); // past the VAD end of speech (480 ms): the turn is still open
    expect(sim.state).toBe('listening');
    expect(sim.emitted('turn.endpoint')).toEqual([]);
    await sim.say('four people', 600);
    await sim.advance(3_000);
    expect(sim.emitted('turn.start')).toHaveLength(1);
    expect(sim.emitted('transcript.final')).toEqual([{ type: 'transcript.final', text: 'I would like to book a table for four people' }]);
    expect(sim.history[0]).toEqual({ role: 'user', content: 'I would like to book a table for four people' });
  });

  it('an unfinished sentence with no continuation ends after maxEndpointingMs', async () => {
    const sim = new Simulation({ stt: { streaming: true }, session: { maxEndpointingMs: 1_200 }, respond: one('Go on.') }).start();
    await sim.say('I would like to book a table for', 1_000);
    await sim.advance(3_000);
    const [endpoint] = sim.emitted('turn.endpoint');
    expect(endpoint).toMatchObject({ by: 'detector', probability: 0, endpointingMs: 1_200 });
  });

  it('a plugged-in detector decides: its probability sets the wait between min and max', async () => {
    const detector = scriptedTurnDetector([0.5]);
    const sim = new Simulation({ stt: { streaming: true }, turnDetector: detector, respond: one('Ok.') }).start();
    await sim.say('whatever the model thinks', 800);
    await sim.advance(3_000);
    expect(sim.emitted('turn.endpoint')[0]).toMatchObject({ by: 'detector', probability: 0.5, endpointingMs: 850 });
    expect(detector.calls[0]?.text).toBe('whatever the model thinks');
    // The detector hears the turn's audio from its onset (with the prefix padding).
    expect(detector.calls[0]?.audio.samples.length).toBeGreaterThan(0.8 * 16_000);
  });

  it('speech whose onset comes after the VAD end of speech but before the decision holds the decision: one turn', async () => {
    const sim = new Simulation({
      stt: { streaming: true },
      vad: { minSilenceMs: 256 },
      session: { minEndpointingMs: 300, preemptive: false },
      respond: one('Sure.'),
    }).start();
    // Voice ends at 800 ms: the VAD ends the utterance at 1056 ms, the decision is due at 1100 ms.
    await sim.say('Book a table.', 800);
    await sim.advance(260);
    // Onset at the end of the window 1056–1088 ms (before the decision), confirmed at 1120 ms.
    await sim.say('For two.', 600);
    await sim.advance(4_000);
    expect(sim.emitted('turn.endpoint')).toHaveLength(1);
    expect(sim.history.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['Book a table. For two.']);
  });

  it.each([true, false])('new words heard just after a new onset do not end the turn before the VAD confirms the speech (preemptive %s)', async (preemptive) => {
    const sim = new Simulation({ stt: { streaming: true }, session: { preemptive }, respond: one('Ok.') }).start();
    await sim.say('I would like to book a table for', 1_200);
    await sim.advance(700); // the VAD has ended the utterance; the decision waits (…for)
    sim.speechStart();
    await sim.advance(40); // the onset is out, its confirmation (minSpeechMs) is not
    sim.partial('I would like to book a table for four'); // a recognizer hears the new word first
    await sim.advance(600);
    sim.speechEnd('four people');
    await sim.advance(4_000);
    expect(sim.emitted('turn.start')).toHaveLength(1);
    expect(sim.emitted('transcript.final')).toEqual([{ type: 'transcript.final', text: 'I would like to book a table for four people' }]);
  });

  it('validates the endpointing settings', () => {
    expect(() => resolveSessionSettings({ minEndpointingMs: 900, maxEndpointingMs: 500 })).toThrow(ConfigError);
    expect(() => resolveSessionSettings({ minEndpointingMs: 150 }, 192)).toThrow(/pauseMs/);
    expect(resolveSessionSettings({}, 192)).toMatchObject({ minEndpointingMs: 200, maxEndpointingMs: 1500, preemptive: true });
  });
});

describe('preemptive replies', () => {
  it('commits a speculative reply whose words hold: one transcript.final, one audio start, the turn in the history once', async () => {
    const sim = new Simulation({
      stt: { streaming: true },
      session: { minEndpointingMs: 600, maxEndpointingMs: 1_500 },
      llm: { firstTokenMs: 300 },
      respond: one('A table for two, done.'),
    }).start();
    await sim.say('Book a table for two.', 800);
    await sim.advance(4_000);
    expect(sim.emitted('reply.preemptive').map((e) => e.outcome)).toEqual(['started', 'used']);
    expect(sim.emitted('transcript.final')).toHaveLength(1);
    expect(sim.emitted('reply.audioStart')).toHaveLength(1);
    expect(sim.ledger.count('llm')).toBe(1);
    expect(sim.history).toEqual([
      { role: 'user', content: 'Book a table for two.' },
      { role: 'assistant', content: 'A table for two, done.' },
    ]);
  });

  it('discards a speculative reply when the user goes on: its LLM call is aborted and nothing of it is sent or recorded', async () => {
    const sim = new Simulation({
      stt: { streaming: true },
      session: { minEndpointingMs: 600, maxEndpointingMs: 1_500 },
      llm: { firstTokenMs: 300 },
      respond: (messages) => [`You said ${String(messages.at(-1)?.content)}`],
    }).start();
    await sim.say('Book a table.', 800);
    await sim.advance(400); // the candidate is out (pause at 192 ms), the decision is not (600 ms)
    expect(sim.emitted('reply.preemptive').map((e) => e.outcome)).toEqual(['started']);
    expect(sim.state).toBe('listening'); // a speculation is invisible
    await sim.say('For two on Friday.', 800);
    await sim.advance(4_000);
    const outcomes = sim.emitted('reply.preemptive');
    expect(outcomes.map((e) => e.outcome)).toEqual(['started', 'discarded', 'started', 'used']);
    const discarded = outcomes[0]!.replyId;
    expect(sim.framesOf(discarded)).toBe(0);
    expect(sim.emitted('reply.delta').filter((d) => d.replyId === discarded)).toEqual([]);
    expect(sim.ledger.count('llm', 'aborted')).toBe(1);
    expect(sim.emitted('transcript.final')).toEqual([{ type: 'transcript.final', text: 'Book a table. For two on Friday.' }]);
    expect(sim.history).toEqual([
      { role: 'user', content: 'Book a table. For two on Friday.' },
      { role: 'assistant', content: 'You said Book a table. For two on Friday.' },
    ]);
  });

  it('tools never run speculatively: the call waits for the commit', async () => {
    let ran = 0;
    const sim = new Simulation({
      stt: { streaming: true },
      session: { minEndpointingMs: 900, maxEndpointingMs: 1_500 },
      tools: [{ name: 'book', description: 'books', parameters: { type: 'object' }, execute: async () => ++ran }],
      respond: (messages) => (messages.at(-1)?.role === 'tool' ? ['Booked.'] : [{ toolCall: { name: 'book', arguments: '{}' } }]),
    }).start();
    await sim.say('Book it.', 600);
    await sim.advance(500);
    expect(sim.emitted('reply.preemptive').map((e) => e.outcome)).toEqual(['started']);
    expect(ran).toBe(0);
    await sim.advance(3_000);
    expect(ran).toBe(1);
    expect(sim.history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
  });

  it('preemptive: false never speculates', async () => {
    const sim = new Simulation({ stt: { streaming: true }, session: { preemptive: false, minEndpointingMs: 600 }, respond: one('Ok.') }).start();
    await sim.say('Book a table.', 800);
    await sim.advance(3_000);
    expect(sim.emitted('reply.preemptive')).toEqual([]);
    expect(sim.emitted('turn.start')).toHaveLength(1);
  });
});

describe('recognizer failures', () => {
  it('a stream that fails mid-utterance falls back to batch transcription of the buffered utterance, once, with an error event', async () => {
    let sim!: Simulation;
    let streams = 0;
    const stt: SttProvider = {
      name: 'flaky-stream',
      transcribe: (audio, options) => sim.stt.transcribe(audio, options),
      async *stream(audio) {
        streams += 1;
        for await (const _chunk of audio) throw new ProviderError('provider_failed', 'stt', 'stream reset by peer');
      },
    };
    sim = new Simulation({ providers: { stt }, respond: one('Ok.') }).start();
    await sim.say('book a table for two', 800);
    await sim.advance(4_000);
    expect(streams).toBe(1);
    expect(sim.stt.ledger.count('stt')).toBe(1);
    expect(sim.emitted('error')).toEqual([expect.objectContaining({ code: 'provider_failed', fatal: false })]);
    expect(sim.history[0]).toEqual({ role: 'user', content: 'book a table for two' });
  });

  it.each([true, false])('a stream that fails after an interim: its stale interim is forgotten, the batch transcript answers (preemptive %s)', async (preemptive) => {
    let sim!: Simulation;
    const stt: SttProvider = {
      name: 'stream-breaks-after-one-interim',
      transcribe: (audio, options) => sim.stt.transcribe(audio, options),
      async *stream(audio) {
        let chunks = 0;
        for await (const _chunk of audio) {
          if (++chunks === 5) yield { text: 'book a', final: false };
          if (chunks === 10) throw new ProviderError('provider_unavailable', 'stt', 'stream reset by peer');
        }
      },
    };
    sim = new Simulation({ providers: { stt }, session: { preemptive }, respond: (m) => [`You said ${String(m.at(-1)?.content)}`] }).start();
    await sim.say('book a table for two', 1_200);
    await sim.advance(5_000);
    expect(sim.emitted('transcript.final')).toEqual([{ type: 'transcript.final', text: 'book a table for two' }]);
    expect(sim.history[0]).toEqual({ role: 'user', content: 'book a table for two' });
    // No more text comes after the failure: the VAD's end of speech decides, not maxEndpointingMs.
    expect(sim.emitted('turn.endpoint')[0]).toMatchObject({ by: 'silence', endpointingMs: 480 });
  });

  it('a stream that hangs after the end of turn is given up after sttTimeoutMs, and batch transcription answers', async () => {
    let sim!: Simulation;
    const stt: SttProvider = {
      name: 'hung-stream',
      transcribe: (audio, options) => sim.stt.transcribe(audio, options),
      async *stream(_audio, options) {
        await new Promise((_, reject) => options.signal.addEventListener('abort', () => reject(new Error('aborted'))));
      },
    };
    sim = new Simulation({ providers: { stt }, session: { sttTimeoutMs: 1_000 }, respond: one('Ok.') }).start();
    await sim.say('book a table for two', 800);
    await sim.advance(1_200); // the end of turn: nothing came, it waits up to maxEndpointingMs for text
    expect(sim.state).toBe('listening');
    await sim.advance(5_000);
    expect(sim.emitted('error')).toEqual([expect.objectContaining({ code: 'provider_timeout' })]);
    expect(sim.history[0]).toEqual({ role: 'user', content: 'book a table for two' });
    expect(sim.ledger.open()).toEqual([]);
  });
});

describe('user idle', () => {
  it('is off by default', async () => {
    const sim = new Simulation().start();
    await sim.advance(120_000);
    expect(sim.emitted('session.idle')).toEqual([]);
  });

  it('emits session.idle, re-prompts through the LLM up to maxIdlePrompts, then closes with reason idle', async () => {
    const prompts: string[] = [];
    const sim = new Simulation({
      session: { userIdleTimeoutMs: 5_000, maxIdlePrompts: 1, idlePrompt: 'Ask if they are there.' },
      respond: (messages) => {
        prompts.push(String(messages.at(-1)?.content));
        return ['Are you still there?'];
      },
    }).start();
    await sim.advance(5_100);
    expect(sim.emitted('session.idle')).toEqual([{ type: 'session.idle', prompts: 0 }]);
    expect(sim.emitted('turn.start')).toEqual([{ type: 'turn.start', replyId: 1, source: 'idle' }]);
    expect(prompts).toEqual(['Ask if they are there.']);
    await sim.advance(10_000);
    expect(sim.emitted('session.idle')).toEqual([
      { type: 'session.idle', prompts: 0 },
      { type: 'session.idle', prompts: 1 },
    ]);
    expect(sim.emitted('session.closed')).toEqual([{ type: 'session.closed', reason: 'idle' }]);
    // The nudge is not part of the conversation.
    expect(sim.history).toEqual([{ role: 'assistant', content: 'Are you still there?' }]);
  });

  it('speech resets the idle count and timer', async () => {
    const sim = new Simulation({ session: { userIdleTimeoutMs: 5_000, maxIdlePrompts: 1 }, respond: one('Mm.') }).start();
    await sim.advance(4_000);
    await sim.say('hello', 500);
    await sim.advance(4_000);
    expect(sim.emitted('session.idle')).toEqual([]);
    await sim.advance(3_000);
    expect(sim.emitted('session.idle')).toHaveLength(1);
    expect(sim.state).not.toBe('closed');
  });
});
