/**
 * The session-events codec: SessionEmitted events and public states → wire messages. Pure cases
 * first, then the codec fed by a real session in virtual time (src/testing), whose every message
 * must pass the wire schema.
 */
import { describe, expect, it } from 'vitest';
import type { SessionEmitted } from '../../machines/session.js';
import {
  SessionEventEncoder,
  encodeSessionEvent,
  encodeSessionState,
  initialEncoderState,
  serializeServerMessage,
  type ServerMessage,
  SESSION_STATES,
} from '../../src/protocol/index.js';
import { Simulation } from '../../src/testing/index.js';

const encode = (event: SessionEmitted, state = initialEncoderState()) => encodeSessionEvent(event, state).messages;

describe('encodeSessionEvent', () => {
  it('maps VAD, transcript and interruption events one to one, ids as strings', () => {
    expect(encode({ type: 'vad.speechStart', atMs: 120 })).toEqual([{ type: 'vad.speech_start', atMs: 120 }]);
    expect(encode({ type: 'vad.speechEnd', atMs: 1900, durationMs: 1780, voicedMs: 1400 })).toEqual([
      { type: 'vad.speech_end', atMs: 1900, durationMs: 1780, voicedMs: 1400 },
    ]);
    expect(encode({ type: 'transcript.partial', text: 'book a' })).toEqual([{ type: 'transcript.partial', text: 'book a' }]);
    expect(encode({ type: 'transcript.final', text: 'book a table' })).toEqual([{ type: 'transcript.final', text: 'book a table' }]);
    expect(encode({ type: 'interruption.false', replyId: 3, voicedMs: 416 })).toEqual([{ type: 'interruption.false', replyId: '3', voicedMs: 416 }]);
    expect(encode({ type: 'interruption.confirmed', replyId: 3, voicedMs: 608, by: 'voice' })).toEqual([
      { type: 'interruption.confirmed', replyId: '3', voicedMs: 608, by: 'voice' },
    ]);
  });

  it('closes the audio of a reply that started it before its reply.done, once', () => {
    let state = initialEncoderState();
    const step = (event: SessionEmitted): readonly ServerMessage[] => {
      const out = encodeSessionEvent(event, state);
      state = out.state;
      return out.messages;
    };
    expect(step({ type: 'reply.audioStart', replyId: 1, sampleRate: 24_000 })).toEqual([{ type: 'reply.audio_start', replyId: '1', sampleRate: 24_000 }]);
    expect(state.audioStarted).toEqual([1]);
    expect(step({ type: 'reply.done', replyId: 1, text: 'Hi.', interrupted: false })).toEqual([
      { type: 'reply.audio_end', replyId: '1' },
      { type: 'reply.done', replyId: '1', text: 'Hi.', interrupted: false },
    ]);
    expect(state.audioStarted).toEqual([]);
    // A reply cut before any audio: no audio_end.
    expect(step({ type: 'reply.done', replyId: 2, text: '', interrupted: true })).toEqual([{ type: 'reply.done', replyId: '2', text: '', interrupted: true }]);
  });

  it('does not change the state it was given', () => {
    const state = initialEncoderState();
    const next = encodeSessionEvent({ type: 'reply.audioStart', replyId: 1, sampleRate: 16_000 }, state).state;
    expect(state.audioStarted).toEqual([]);
    expect(next).not.toBe(state);
    expect(encodeSessionEvent({ type: 'vad.speechStart', atMs: 0 }, next).state).toBe(next);
  });

  it('hides reply deltas when a guard is set (the text comes with reply.done)', () => {
    const delta: SessionEmitted = { type: 'reply.delta', replyId: 1, text: 'Sure' };
    expect(encode(delta)).toEqual([{ type: 'reply.delta', replyId: '1', text: 'Sure' }]);
    expect(encode(delta, initialEncoderState({ hideDeltas: true }))).toEqual([]);
  });

  it('one tool.start / tool.end per call, JSON parsed where it is JSON, long errors cut', () => {
    expect(
      encode({
        type: 'tools.start',
        replyId: 2,
        calls: [
          { id: 'c1', name: 'book', arguments: '{"people":2}' },
          { id: 'c2', name: 'book', arguments: '{people: two' },
        ],
      }),
    ).toEqual([
      { type: 'tool.start', replyId: '2', callId: 'c1', name: 'book', arguments: { people: 2 } },
      { type: 'tool.start', replyId: '2', callId: 'c2', name: 'book', arguments: '{people: two' },
    ]);
    expect(
      encode({
        type: 'tools.end',
        replyId: 2,
        results: [
          { callId: 'c1', name: 'book', ok: true, content: '{"id":"b7"}' },
          { callId: 'c3', name: 'hours', ok: true, content: 'noon to eleven' },
          { callId: 'c2', name: 'book', ok: false, content: 'x'.repeat(5000) },
        ],
      }),
    ).toEqual([
      { type: 'tool.end', replyId: '2', callId: 'c1', name: 'book', ok: true, result: { id: 'b7' } },
      { type: 'tool.end', replyId: '2', callId: 'c3', name: 'hours', ok: true, result: 'noon to eleven' },
      { type: 'tool.end', replyId: '2', callId: 'c2', name: 'book', ok: false, error: 'x'.repeat(4096) },
    ]);
  });

  it('errors keep a wire code (anything else becomes internal) and a generic message naming the kind of provider', () => {
    expect(encode({ type: 'error', code: 'provider_timeout', message: 'tts.internal.example did not answer', fatal: false, provider: 'tts' })).toEqual([
      { type: 'error', code: 'provider_timeout', message: 'the text-to-speech provider did not answer in time', fatal: false },
    ]);
    expect(encode({ type: 'error', code: 'made_up', message: 'odd', fatal: true })).toEqual([{ type: 'error', code: 'internal', message: 'internal server error', fatal: true }]);
    expect(encode({ type: 'error', code: 'session_invalid_state', message: 'not now', fatal: false })).toEqual([{ type: 'error', code: 'session_invalid_state', message: 'not now', fatal: false }]);
  });

  it("a failed tool's thrown message is replaced for the client; voxstate's own tool messages stay", () => {
    const ends = encode({
      type: 'tools.end',
      replyId: 3,
      results: [
        { callId: 'c1', name: 'db', ok: false, content: JSON.stringify({ error: 'ECONNREFUSED 10.0.0.5:5432', code: 'tool_failed' }) },
        { callId: 'c2', name: 'db', ok: false, content: JSON.stringify({ error: "'db' did not finish within 50 ms", code: 'tool_failed', reason: 'timeout' }) },
        { callId: 'c3', name: 'x', ok: false, content: JSON.stringify({ error: "unknown tool 'x'", code: 'tool_unknown' }) },
      ],
    });
    expect(ends.map((m) => JSON.parse(String((m as { error?: string }).error)))).toEqual([
      { error: 'the tool failed', code: 'tool_failed' },
      { error: "'db' did not finish within 50 ms", code: 'tool_failed', reason: 'timeout' },
      { error: "unknown tool 'x'", code: 'tool_unknown' },
    ]);
  });

  it('events with no wire form give nothing', () => {
    const silent: SessionEmitted[] = [
      { type: 'turn.start', replyId: 1, source: 'voice' },
      { type: 'reply.paused', replyId: 1 },
      { type: 'reply.resumed', replyId: 1 },
      { type: 'session.resumed' },
      { type: 'session.resumeRefused' },
      { type: 'session.closed', reason: 'expired' },
    ];
    for (const event of silent) expect(encode(event)).toEqual([]);
  });
});

describe('encodeSessionState', () => {
  it('reports the first state without previous, then every change of the turn or of the voice', () => {
    expect(encodeSessionState({ state: 'listening', voice: 'silent' }, undefined)).toEqual([{ type: 'session.state', state: 'listening', voice: 'silent' }]);
    expect(encodeSessionState({ state: 'listening', voice: 'silent' }, { state: 'listening', voice: 'silent' })).toEqual([]);
    expect(encodeSessionState({ state: 'listening', voice: 'speaking' }, { state: 'listening', voice: 'silent' })).toEqual([
      { type: 'session.state', state: 'listening', voice: 'speaking', previous: 'listening' },
    ]);
    expect(encodeSessionState({ state: 'transcribing', voice: 'silent' }, { state: 'listening', voice: 'speaking' })).toEqual([
      { type: 'session.state', state: 'transcribing', voice: 'silent', previous: 'listening' },
    ]);
  });

  it('SessionEventEncoder remembers the last state it reported', () => {
    const encoder = new SessionEventEncoder();
    expect(encoder.current).toBeUndefined();
    expect(encoder.state({ state: 'listening', voice: 'silent' })).toHaveLength(1);
    expect(encoder.state({ state: 'listening', voice: 'silent' })).toEqual([]);
    expect(encoder.state({ state: 'suspended', voice: 'silent' })).toEqual([{ type: 'session.state', state: 'suspended', voice: 'silent', previous: 'listening' }]);
    expect(encoder.current).toEqual({ state: 'suspended', voice: 'silent' });
  });
});

/** Runs the codec over a simulation's records, in order, as the server host does. */
function wire(sim: Simulation): ServerMessage[] {
  const encoder = new SessionEventEncoder();
  const out: ServerMessage[] = [];
  for (const record of sim.records) {
    if (record.kind === 'state') out.push(...encoder.state({ state: record.state, voice: record.voice }));
    if (record.kind === 'emit') out.push(...encoder.event(record.event));
  }
  for (const message of out) expect(() => serializeServerMessage(message)).not.toThrow();
  return out;
}

const states = (messages: readonly ServerMessage[]) => messages.flatMap((m) => (m.type === 'session.state' ? [`${m.state}|${m.voice}`] : []));

describe('the codec on a real session (virtual time)', () => {
  const reply = () => ['one two three four five six seven eight nine ten.'];

  it('a backchannel during a reply: speech start/end, the interrupted.* states, interruption.false and the reply going on', async () => {
    const sim = new Simulation({ respond: reply, session: { minInterruptionMs: 600, falseInterruptionTimeoutMs: 600 } }).start();
    sim.type('count');
    await sim.advance(650);
    await sim.say('yeah', 420);
    await sim.advance(6_000);
    const messages = wire(sim);
    const types = messages.map((m) => m.type);
    expect(types.filter((t) => t.startsWith('vad.') || t.startsWith('interruption.'))).toEqual(['vad.speech_start', 'vad.speech_end', 'interruption.false']);
    expect(messages.find((m) => m.type === 'interruption.false')).toEqual({ type: 'interruption.false', replyId: '1', voicedMs: 416 });
    expect(messages.find((m) => m.type === 'vad.speech_end')).toMatchObject({ voicedMs: 416 });
    expect(messages.filter((m) => m.type === 'reply.done')).toEqual([
      { type: 'reply.done', replyId: '1', text: 'one two three four five six seven eight nine ten.', interrupted: false },
    ]);
    const seen = states(messages);
    expect(seen[0]).toBe('listening|silent');
    expect(seen).toContain('interrupted.provisional|silent');
    expect(seen).toContain('interrupted.confirming|speaking');
    expect(seen).toContain('interrupted.paused|silent');
    expect(seen.at(-1)).toBe('listening|silent');
    // Every state change is reported exactly once, each with the state before it.
    const reported = messages.filter((m): m is Extract<ServerMessage, { type: 'session.state' }> => m.type === 'session.state');
    for (let i = 1; i < reported.length; i++) expect(reported[i]?.previous).toBe(reported[i - 1]?.state);
    for (const m of reported) expect(SESSION_STATES as readonly string[]).toContain(m.state);
  });

  it('a confirmed barge-in: interruption.confirmed, then audio_end and the cut reply.done, then listening', async () => {
    const sim = new Simulation({ respond: reply, session: { minInterruptionMs: 300 } }).start();
    sim.type('count to ten');
    await sim.advance(650);
    sim.speechStart();
    await sim.advance(400);
    const messages = wire(sim);
    const at = messages.findIndex((m) => m.type === 'interruption.confirmed');
    expect(messages[at]).toEqual({ type: 'interruption.confirmed', replyId: '1', voicedMs: 320, by: 'voice' });
    expect(messages.slice(at + 1, at + 3)).toEqual([
      { type: 'reply.audio_end', replyId: '1' },
      { type: 'reply.done', replyId: '1', text: 'one two three', interrupted: true },
    ]);
    expect(states(messages).at(-1)).toBe('listening|speaking');
  });

  it('a dropped transport is reported as suspended, and the resume as the turn it came back to', async () => {
    const sim = new Simulation({ respond: reply }).start();
    sim.type('count');
    await sim.advance(500);
    sim.dropTransport();
    await sim.advance(100);
    sim.resume();
    await sim.advance(100);
    const seen = states(wire(sim));
    expect(seen.slice(-2)).toEqual(['suspended|silent', 'speaking|silent']);
  });
});
