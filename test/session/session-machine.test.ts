import { describe, expect, it } from 'vitest';
import { Simulation } from '../../src/testing/index.js';

const script = (text: string) => () => [text];

describe('session machine in virtual time', () => {
  it('a spoken turn goes listening → transcribing → thinking → speaking → listening and is recorded', async () => {
    const sim = new Simulation({ respond: script('Sure. A table for two at seven.'), stt: { latencyMs: 50 }, llm: { firstTokenMs: 100 } }).start();
    expect(sim.state).toBe('listening');
    await sim.say('book a table for two', 800);
    await sim.advance(10_000);
    expect(sim.states()).toEqual(['listening', 'transcribing', 'thinking', 'speaking', 'listening']);
    expect(sim.history).toEqual([
      { role: 'user', content: 'book a table for two' },
      { role: 'assistant', content: 'Sure. A table for two at seven.' },
    ]);
    // 7 words × 200 ms of fake speech = 1.4 s = 70 frames of 20 ms.
    expect(sim.framesOf(1)).toBe(70);
    expect(sim.ledger.open()).toEqual([]);
  });

  it('the system prompt reaches the LLM as the first message', async () => {
    const sim = new Simulation({ systemPrompt: 'You are a concise host.' }).start();
    sim.type('hello');
    await sim.advance(5_000);
    expect(sim.llm.requests[0]?.[0]).toEqual({ role: 'system', content: 'You are a concise host.' });
  });

  it('speech during a reply pauses the audio at the provisional onset and a confirmed barge-in keeps exactly the heard words', async () => {
    const sim = new Simulation({
      respond: script('one two three four five six seven eight nine ten.'),
      session: { minInterruptionMs: 300 },
    }).start();
    sim.type('count to ten');
    await sim.advance(650); // 3 words of 200 ms played (+ a partial fourth)
    expect(sim.state).toBe('speaking');
    sim.speechStart();
    await sim.advance(32); // the first voiced window is scored at its end: provisional onset
    expect(sim.state).toBe('interrupted.provisional');
    const framesAtPause = sim.framesOf(1);
    await sim.advance(100);
    expect(sim.state).toBe('interrupted.confirming');
    expect(sim.voice).toBe('speaking');
    expect(sim.framesOf(1)).toBe(framesAtPause); // paused, not a frame more
    await sim.advance(250); // 300 ms of voiced speech: confirmed
    expect(sim.state).toBe('listening');
    expect(sim.voice).toBe('speaking');
    expect(sim.history.at(-1)).toEqual({ role: 'assistant', content: 'one two three', interrupted: true });
    expect(sim.emitted('reply.done').at(-1)).toMatchObject({ replyId: 1, interrupted: true, text: 'one two three' });
    expect(sim.emitted('interruption.confirmed')).toEqual([{ type: 'interruption.confirmed', replyId: 1, voicedMs: 320, by: 'voice' }]);
    expect(sim.records.some((r) => r.kind === 'input' && r.input === 'clearOutput')).toBe(true);
    sim.speechEnd('stop');
    await sim.advance(5_000);
    expect(sim.framesOf(1)).toBe(framesAtPause);
    expect(sim.history.map((m) => m.content)).toEqual(['count to ten', 'one two three', 'stop', 'one two three four five six seven eight nine ten.']);
  });

  it('a backchannel shorter than minInterruptionMs voiced is a false interruption: playout resumes where it paused, nothing recorded', async () => {
    const sim = new Simulation({
      respond: script('one two three four five six seven eight nine ten.'),
      session: { minInterruptionMs: 600, falseInterruptionTimeoutMs: 600 },
    }).start();
    sim.type('count');
    await sim.advance(650);
    await sim.say('yeah', 420); // a spoken "yeah": ~420 ms voiced, however long it takes to end the turn
    await sim.advance(200);
    expect(sim.state).toBe('interrupted.paused');
    const paused = sim.framesOf(1);
    await sim.advance(350); // the VAD's end of turn comes during the wait; nothing moves
    expect(sim.voice).toBe('silent');
    expect(sim.framesOf(1)).toBe(paused);
    await sim.advance(300);
    expect(sim.state).toBe('speaking');
    await sim.advance(5_000);
    expect(sim.framesOf(1)).toBe(100); // every frame of the 2 s reply, none twice
    expect(sim.emitted('interruption.false')).toEqual([{ type: 'interruption.false', replyId: 1, voicedMs: 416 }]);
    expect(sim.emitted('reply.done')).toEqual([{ type: 'reply.done', replyId: 1, text: 'one two three four five six seven eight nine ten.', interrupted: false }]);
    expect(sim.emitted('turn.start')).toHaveLength(1);
    expect(sim.history).toEqual([
      { role: 'user', content: 'count' },
      { role: 'assistant', content: 'one two three four five six seven eight nine ten.' },
    ]);
  });

  it('the voiced time of an interruption is summed across short pauses: two short bursts confirm it', async () => {
    const sim = new Simulation({ respond: script('one two three four five six seven eight nine ten.'), session: { minInterruptionMs: 600 } }).start();
    sim.type('count');
    await sim.advance(650);
    await sim.say('no', 350);
    await sim.advance(250); // paused (pauseMs), not yet false (600 ms from the pause)
    expect(sim.state).toBe('interrupted.paused');
    await sim.say('wait', 350);
    await sim.advance(20);
    expect(sim.state).toBe('listening');
    expect(sim.emitted('interruption.confirmed')[0]?.by).toBe('voice');
    await sim.advance(5_000);
    expect(sim.history.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['count', 'no wait']);
  });

  it('an onset the VAD does not confirm (one voiced window) resumes the output at once', async () => {
    const sim = new Simulation({ respond: script('one two three four five six seven eight nine ten.') }).start();
    sim.type('count');
    await sim.advance(650);
    await sim.say('', 20); // a click: one window
    await sim.advance(40);
    expect(sim.emitted('reply.paused')).toHaveLength(1);
    expect(sim.emitted('reply.resumed')).toHaveLength(1);
    expect(sim.state).toBe('speaking');
    expect(sim.emitted('vad.speechStart')).toEqual([]);
    await sim.advance(5_000);
    expect(sim.framesOf(1)).toBe(100);
  });

  it('interim words that are only backchannels never confirm; real words do', async () => {
    const sim = new Simulation({ respond: script('one two three four five six seven eight nine ten.'), session: { minInterruptionMs: 5_000, minInterruptionWords: 2 } }).start();
    sim.type('count');
    await sim.advance(650);
    sim.speechStart();
    await sim.advance(100);
    sim.partial('yeah uh huh okay got it');
    expect(sim.state).toBe('interrupted.confirming');
    sim.partial('yeah wait stop');
    expect(sim.state).toBe('listening');
    expect(sim.emitted('interruption.confirmed')[0]?.by).toBe('words');
  });

  it('user.interrupt cancels the reply immediately', async () => {
    const sim = new Simulation({ respond: script('a b c d e f g h.') }).start();
    sim.type('go');
    await sim.advance(420);
    sim.interrupt();
    expect(sim.state).toBe('listening');
    expect(sim.history.at(-1)).toEqual({ role: 'assistant', content: 'a b', interrupted: true });
    expect(sim.liveReplies()).toBe(0);
    expect(sim.ledger.open()).toEqual([]);
  });

  it('a provider error ends the turn with an error event and the session back in listening', async () => {
    const sim = new Simulation({ llm: { fail: (n) => n === 1 } }).start();
    sim.type('hello');
    await sim.advance(1_000);
    expect(sim.state).toBe('listening');
    expect(sim.emitted('error')).toEqual([{ type: 'error', code: 'provider_failed', message: 'fake LLM failure on call 1', fatal: false, provider: 'llm' }]);
    sim.type('again');
    await sim.advance(5_000);
    expect(sim.history.at(-1)).toEqual({ role: 'assistant', content: 'You said again. Anything else?' });
  });

  it('an empty transcript returns to listening without a turn', async () => {
    const sim = new Simulation().start();
    await sim.say('', 500);
    await sim.advance(1_000);
    expect(sim.state).toBe('listening');
    expect(sim.history).toEqual([]);
  });

  it('speaking again while the first utterance is transcribed makes one turn of both', async () => {
    const sim = new Simulation({ stt: { latencyMs: 300 } }).start();
    await sim.say('I would like', 500);
    await sim.advance(600); // the end of turn (480 ms of silence) starts the transcription
    expect(sim.state).toBe('transcribing');
    await sim.say('a table', 500);
    await sim.advance(5_000);
    expect(sim.history[0]).toEqual({ role: 'user', content: 'I would like a table' });
    // Each utterance is transcribed once (nothing is thrown away); one transcript.final for the turn.
    expect(sim.stt.ledger.count('stt', 'aborted')).toBe(0);
    expect(sim.emitted('transcript.final')).toEqual([{ type: 'transcript.final', text: 'I would like a table' }]);
  });

  it('transport loss suspends; resume with the token restores the reply and history; a wrong token is refused', async () => {
    const sim = new Simulation({ respond: script('one two three four five.'), session: { sessionTtlMs: 10_000 } }).start();
    sim.type('count');
    await sim.advance(300);
    sim.dropTransport();
    expect(sim.state).toBe('suspended');
    const frames = sim.framesOf(1);
    await sim.advance(2_000);
    expect(sim.framesOf(1)).toBe(frames);
    sim.resume('not-the-token');
    expect(sim.state).toBe('suspended');
    expect(sim.emitted('session.resumeRefused')).toHaveLength(1);
    sim.resume();
    expect(sim.state).toBe('speaking');
    await sim.advance(5_000);
    expect(sim.history).toEqual([
      { role: 'user', content: 'count' },
      { role: 'assistant', content: 'one two three four five.' },
    ]);
  });

  it('a transcription that finishes while the transport is gone starts the reply with its output paused until the resume', async () => {
    const sim = new Simulation({ respond: script('one two three.'), stt: { latencyMs: 400 }, session: { sessionTtlMs: 10_000 } }).start();
    await sim.say('hello', 500);
    await sim.advance(520);
    expect(sim.state).toBe('transcribing');
    sim.dropTransport();
    await sim.advance(2_000);
    expect(sim.emitted('turn.start')).toHaveLength(1);
    expect(sim.framesOf(1)).toBe(0);
    sim.resume();
    await sim.advance(2_000);
    expect(sim.framesOf(1)).toBe(30);
    expect(sim.history.at(-1)).toEqual({ role: 'assistant', content: 'one two three.' });
  });

  it('a suspended session closes when the TTL expires and leaves nothing running', async () => {
    const sim = new Simulation({ respond: script('one two three four five.'), session: { sessionTtlMs: 1_000 } }).start();
    sim.type('count');
    await sim.advance(300);
    sim.dropTransport();
    await sim.advance(1_001);
    expect(sim.state).toBe('closed');
    expect(sim.actor.getSnapshot().status).toBe('done');
    expect(sim.ledger.open()).toEqual([]);
    expect(sim.clock.pendingTimers).toBe(0);
    expect(sim.emitted('session.closed')).toEqual([{ type: 'session.closed', reason: 'expired' }]);
  });

  it('tool calls and results land in the history between the user turn and the spoken answer', async () => {
    const sim = new Simulation({
      tools: [
        {
          name: 'check_availability',
          description: 'Checks a table',
          parameters: { type: 'object', properties: { people: { type: 'number' } } },
          execute: async (args) => ({ available: true, people: (args as { people: number }).people }),
        },
      ],
      respond: (messages) =>
        messages.at(-1)?.role === 'tool'
          ? ['The table is available.']
          : [{ toolCall: { id: 'c1', name: 'check_availability', arguments: '{"people":2}' } }],
    }).start();
    sim.type('table for two?');
    await sim.advance(5_000);
    expect(sim.history).toEqual([
      { role: 'user', content: 'table for two?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'check_availability', arguments: '{"people":2}' }] },
      { role: 'tool', toolCallId: 'c1', name: 'check_availability', content: '{"available":true,"people":2}' },
      { role: 'assistant', content: 'The table is available.' },
    ]);
    expect(sim.emitted('tools.end')[0]?.results[0]?.ok).toBe(true);
  });

  // Found by the property test: an empty transcript with typed text queued announced an empty
  // transcript.final that no history entry matched.
  it('an empty transcript with text typed meanwhile starts the turn with the text and no empty transcript.final', async () => {
    const sim = new Simulation({ stt: { latencyMs: 100 } }).start();
    await sim.say('', 100);
    await sim.advance(520);
    expect(sim.state).toBe('transcribing');
    sim.type('u0');
    await sim.advance(5_000);
    expect(sim.emitted('transcript.final')).toEqual([]);
    expect(sim.history[0]).toEqual({ role: 'user', content: 'u0' });
  });

  // Found by the property test: text typed during a transcription, then more speech, put the later
  // speech before the typed text. Speech after typed text now waits its turn.
  it('speech after text typed during a transcription is transcribed after the text, keeping the order', async () => {
    const sim = new Simulation({ stt: { latencyMs: 300 } }).start();
    await sim.say('u0', 300);
    await sim.advance(520);
    expect(sim.state).toBe('transcribing');
    sim.type('u1');
    sim.speechStart();
    await sim.advance(100);
    expect(sim.state).toBe('transcribing');
    expect(sim.voice).toBe('speaking');
    sim.speechEnd('u2');
    await sim.advance(10_000);
    expect(sim.history.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['u0', 'u1', 'u2']);
    expect(sim.state).toBe('listening');
  });

  it('a guard rewrites a user turn and vetoes a reply segment; the history holds what was actually said', async () => {
    const sim = new Simulation({
      respond: () => ['Your card number is 4111. Anything else I can do?'],
      guard: ({ kind, text }) => {
        if (kind === 'user') return { action: 'rewrite', text: text.replace(/\d/g, '#') };
        return /\d{4}/.test(text) ? { action: 'veto' } : { action: 'allow' };
      },
    }).start();
    await sim.say('my pin is 1234', 500);
    await sim.advance(10_000);
    expect(sim.history).toEqual([
      { role: 'user', content: 'my pin is ####' },
      { role: 'assistant', content: 'Anything else I can do?' },
    ]);
    expect(sim.tts.texts).toEqual(['Anything else I can do?']);
  });
});
