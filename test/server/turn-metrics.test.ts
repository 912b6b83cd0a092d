import { describe, expect, it } from 'vitest';
import type { SessionEmitted } from '../../machines/session.js';
import { metricsTurnMessage, TurnMetricsTracker } from '../../src/server/turn-metrics.js';

function tracker(): { metrics: TurnMetricsTracker; at: (ms: number) => void } {
  let now = 0;
  return { metrics: new TurnMetricsTracker({ sessionId: 's1', now: () => now }), at: (ms) => void (now = ms) };
}

describe('TurnMetricsTracker', () => {
  it('a voice turn: audio edge → end-of-turn decision → final transcript → first token → first frame on the transport', () => {
    const { metrics, at } = tracker();
    const events: Array<[number, SessionEmitted]> = [
      // The decision came 200 ms of audio after the edge: the edge was at 800 ms wall time.
      [1000, { type: 'turn.endpoint', utterance: 1, edgeMs: 5_000, endpointingMs: 200, probability: 1, by: 'detector' }],
      [1090, { type: 'transcript.final', text: 'a table for two' }],
      [1100, { type: 'turn.start', replyId: 1, source: 'voice' }],
      [1330, { type: 'reply.delta', replyId: 1, text: 'Sure' }],
      [1400, { type: 'reply.delta', replyId: 1, text: ', two.' }],
    ];
    for (const [t, event] of events) {
      at(t);
      expect(metrics.observe(event)).toBeUndefined();
    }
    at(1440);
    metrics.frame(1);
    at(1460);
    metrics.frame(1);
    at(2500);
    const done = metrics.observe({ type: 'reply.done', replyId: 1, text: 'Sure, two.', interrupted: false });
    expect(done).toEqual({
      sessionId: 's1',
      turnId: '1',
      source: 'voice',
      interrupted: false,
      userStoppedToFirstAudioMs: 640,
      endpointingMs: 200,
      speechEndToFirstAudioMs: 440,
      sttFinalLagMs: 290,
      llmFirstTokenMs: 230,
      ttsFirstAudioMs: 110,
      preemptive: 'off',
    });
    expect(metricsTurnMessage(done!)).toEqual({
      type: 'metrics.turn',
      turnId: '1',
      userStoppedToFirstAudioMs: 640,
      endpointingMs: 200,
      speechEndToFirstAudioMs: 440,
      sttFinalLagMs: 290,
      llmFirstTokenMs: 230,
      ttsFirstAudioMs: 110,
      preemptive: 'off',
    });
  });

  it('a speculative reply: discarded ones are counted against the turn; a committed one reports used', () => {
    const { metrics, at } = tracker();
    at(0);
    metrics.observe({ type: 'reply.preemptive', replyId: 1, outcome: 'started' });
    metrics.observe({ type: 'reply.preemptive', replyId: 1, outcome: 'discarded' });
    at(500);
    metrics.observe({ type: 'turn.endpoint', utterance: 1, edgeMs: 0, endpointingMs: 300, probability: 0.9, by: 'detector' });
    metrics.observe({ type: 'turn.start', replyId: 2, source: 'voice' });
    expect(metrics.observe({ type: 'reply.done', replyId: 2, text: '', interrupted: false })).toMatchObject({ preemptive: 'discarded', endpointingMs: 300 });
    metrics.observe({ type: 'reply.preemptive', replyId: 3, outcome: 'started' });
    metrics.observe({ type: 'turn.endpoint', utterance: 2, edgeMs: 0, endpointingMs: 200, probability: 1, by: 'detector' });
    metrics.observe({ type: 'transcript.final', text: 'yes' });
    metrics.observe({ type: 'turn.start', replyId: 3, source: 'voice' });
    metrics.observe({ type: 'reply.preemptive', replyId: 3, outcome: 'used' });
    expect(metrics.observe({ type: 'reply.done', replyId: 3, text: '', interrupted: false })).toMatchObject({ preemptive: 'used', sttFinalLagMs: 200 });
  });

  it('a text turn has no speech timings, even after speech that was not a turn (a backchannel during a reply)', () => {
    const { metrics, at } = tracker();
    at(100);
    metrics.observe({ type: 'vad.speechEnd', atMs: 100, durationMs: 500, voicedMs: 416 });
    at(200);
    metrics.observe({ type: 'turn.start', replyId: 1, source: 'text' });
    at(260);
    metrics.observe({ type: 'reply.delta', replyId: 1, text: 'Hi' });
    expect(metrics.observe({ type: 'reply.done', replyId: 1, text: 'Hi', interrupted: true })).toEqual({
      sessionId: 's1',
      turnId: '1',
      source: 'text',
      interrupted: true,
      llmFirstTokenMs: 60,
    });
  });

  it("ignores another reply's frames and deltas and reports each turn once", () => {
    const { metrics, at } = tracker();
    metrics.observe({ type: 'turn.start', replyId: 2, source: 'text' });
    at(50);
    metrics.frame(1);
    metrics.observe({ type: 'reply.delta', replyId: 1, text: 'late' });
    expect(metrics.observe({ type: 'reply.done', replyId: 1, text: 'late', interrupted: true })).toBeUndefined();
    const done = metrics.observe({ type: 'reply.done', replyId: 2, text: '', interrupted: true });
    expect(done).toEqual({ sessionId: 's1', turnId: '2', source: 'text', interrupted: true });
    expect(metrics.observe({ type: 'reply.done', replyId: 2, text: '', interrupted: true })).toBeUndefined();
  });
});
