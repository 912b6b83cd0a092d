/**
 * Client and Motion Server connections that drop at the worst moments, on loopback: mid-reply,
 * during a tool call, right after sending session.resume, and the Motion Server's socket destroyed
 * mid-reply. Each must reach the documented state (suspended and resumable within the TTL, closed
 * after it; the voice reply unharmed by the avatar link) and leave nothing behind once the session
 * has ended.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import type { ChatMessage, Tool } from '../../src/providers/types.js';
import type { VoiceServerOptions } from '../../src/server/index.js';
import { delay } from '../server/helpers.js';
import { baseline, describeLeaks, type FaultRow, leaksSince, printTable, startServer, until } from './harness.js';

const rows: FaultRow[] = [];
afterAll(() => printTable('connection faults', rows));

const LONG = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen.';

function providers(respond: (messages: readonly ChatMessage[]) => ReturnType<ConstructorParameters<typeof FakeLlm>[0]['respond']> = () => [LONG]) {
  return { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond }), tts: new FakeTts({ msPerWord: 200 }) };
}

async function withLeakCheck(name: string, options: Omit<VoiceServerOptions, 'port' | 'inspect'>, body: (setup: Awaited<ReturnType<typeof startServer>>) => Promise<string>): Promise<void> {
  const setup = await startServer(options);
  try {
    const before = baseline();
    const state = await body(setup);
    const leaks = await leaksSince(before, setup);
    expect(setup.actors.length).toBeGreaterThan(3); // the check saw the session's actors
    rows.push({ fault: name, state, leaked: describeLeaks(leaks) });
    expect(leaks).toEqual({ handles: {}, sessions: 0, actors: [] });
  } finally {
    await setup.stop();
  }
}

describe('connection faults', () => {
  it('the client drops mid-reply: suspended with the reply kept, resumed in speaking, and the reply goes on to its end', async () => {
    const llm = providers();
    await withLeakCheck('client drops mid-reply', { vad: false, providers: llm, session: { ttlMs: 2000 } }, async (setup) => {
      const first = setup.client();
      const ready = await first.hello();
      first.send({ type: 'user.text', text: 'count for me' });
      await first.next('reply.audio_start');
      await delay(200);
      first.socket.terminate();
      await first.closed();
      await until(() => setup.server.sessions === 1);
      const back = setup.client();
      await back.opened();
      back.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
      const resumed = await back.next('session.resumed');
      expect(resumed['state']).toBe('speaking');
      const done = await back.next('reply.done');
      expect(done).toMatchObject({ interrupted: false, text: LONG });
      back.send({ type: 'session.close' });
      await back.closed();
      expect(llm.llm.ledger.open()).toEqual([]);
      expect(llm.tts.ledger.open()).toEqual([]);
      return 'suspended → resumed (speaking) → reply.done → closed';
    });
  });

  it('the client drops mid-reply and never comes back: the session closes after its TTL and every provider call ends', async () => {
    const p = providers();
    await withLeakCheck('client drops mid-reply, no resume', { vad: false, providers: p, session: { ttlMs: 300 } }, async (setup) => {
      const c = setup.client();
      await c.hello();
      c.send({ type: 'user.text', text: 'count for me' });
      await c.next('reply.audio_start');
      c.socket.terminate();
      await c.closed();
      await until(() => setup.server.sessions === 0, 5000, 'the session expiring');
      expect(p.llm.ledger.open()).toEqual([]);
      expect(p.tts.ledger.open()).toEqual([]);
      return 'suspended → closed (expired after 300 ms)';
    });
  });

  it('the client drops during a 500 ms tool call: the TTL ends the session, the tool call is aborted', async () => {
    const outcomes: string[] = [];
    const tool: Tool = {
      name: 'slow_lookup',
      description: 'Looks something up slowly.',
      parameters: { type: 'object', properties: {} },
      execute: (_args, { signal }) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            outcomes.push('completed');
            resolve({ found: true });
          }, 500);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            outcomes.push('aborted');
            reject(signal.reason);
          });
        }),
    };
    const respond = (messages: readonly ChatMessage[]) => (messages.at(-1)?.role === 'tool' ? ['Found it.'] : [{ toolCall: { name: 'slow_lookup', arguments: '{}' } }]);
    await withLeakCheck('client drops during a tool call', { vad: false, providers: providers(respond), tools: [tool], session: { ttlMs: 200 } }, async (setup) => {
      const c = setup.client();
      await c.hello();
      c.send({ type: 'user.text', text: 'look it up' });
      await c.next('tool.start');
      c.socket.terminate();
      await c.closed();
      await until(() => setup.server.sessions === 0, 5000, 'the session expiring');
      await until(() => outcomes.length > 0);
      expect(outcomes).toEqual(['aborted']);
      return 'suspended → closed (expired); tool aborted';
    });
  });

  it('the client drops during a tool call and resumes: the tool result still becomes the reply', async () => {
    const tool: Tool = {
      name: 'slow_lookup',
      description: 'Looks something up slowly.',
      parameters: { type: 'object', properties: {} },
      execute: () => delay(500).then(() => ({ found: true })),
    };
    const respond = (messages: readonly ChatMessage[]) => (messages.at(-1)?.role === 'tool' ? ['Found it.'] : [{ toolCall: { name: 'slow_lookup', arguments: '{}' } }]);
    await withLeakCheck('client drops during a tool call, resumes', { vad: false, providers: providers(respond), tools: [tool], session: { ttlMs: 2000 } }, async (setup) => {
      const first = setup.client();
      const ready = await first.hello();
      first.send({ type: 'user.text', text: 'look it up' });
      await first.next('tool.start');
      first.socket.terminate();
      await first.closed();
      await delay(50);
      const back = setup.client();
      await back.opened();
      back.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
      expect((await back.next('session.resumed'))['state']).toBe('thinking');
      expect((await back.next('reply.done'))['text']).toBe('Found it.');
      back.send({ type: 'session.close' });
      await back.closed();
      return 'suspended → resumed (thinking) → reply from the tool result → closed';
    });
  });

  it('the client closes its socket right after sending session.resume: the session is suspended again, still resumable with the token the client holds, and ends after its TTL', async () => {
    await withLeakCheck('client drops during resume', { vad: false, providers: providers(), session: { ttlMs: 400 } }, async (setup) => {
      const first = setup.client();
      const ready = await first.hello();
      first.socket.terminate();
      await first.closed();
      await delay(50);
      const resume = { type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] };
      // Resumes cut off at once, several times: each either never ran or bound a socket that was already gone.
      for (let i = 0; i < 3; i++) {
        const quitter = setup.client();
        await quitter.opened();
        quitter.send(resume);
        quitter.socket.terminate();
        await quitter.closed();
        await delay(30);
      }
      expect(setup.server.sessions).toBe(1); // suspended, waiting for a resume
      // The client never saw an answer: the only token it has still resumes the session.
      const back = setup.client();
      await back.opened();
      back.send(resume);
      expect(await back.next('session.resumed')).toMatchObject({ sessionId: ready['sessionId'] });
      back.socket.terminate();
      await back.closed();
      await until(() => setup.server.sessions === 0, 5000, 'the session expiring');
      return 'suspended after 3 cut-off resumes → resumed with the original token → closed (expired)';
    });
  });

  it('the Motion Server destroys its socket mid-reply: the voice reply completes, the avatar error is not fatal', async () => {
    const motion = new LocalMotionServer();
    const info = await motion.start({ apiKey: 'test-key', appId: 'app-1', avatars: ['avatar-1'] });
    try {
      motion.setFaults({ dropAfterFrames: { frames: 5, times: 1 } });
      const options = {
        vad: false as const,
        providers: providers(() => ['one two three four five six seven eight nine ten.']),
        motion: { apiKey: 'test-key', appId: 'app-1', avatarId: 'avatar-1', consoleEndpointUrl: info.consoleEndpointUrl, ingressEndpointUrl: info.ingressEndpointUrl, reconnect: { maxAttempts: 1 } },
      };
      await withLeakCheck('Motion Server drops its socket mid-reply', options, async (setup) => {
        const c = setup.client();
        await c.hello();
        await delay(300); // the link connects
        c.send({ type: 'user.text', text: 'count' });
        const done = await c.next('reply.done');
        expect(done).toMatchObject({ interrupted: false, text: 'one two three four five six seven eight nine ten.' });
        // 2 s of agent audio reached the client whole although the avatar link broke.
        const samples = c.audio.reduce((n, frame) => n + frame.length, 0);
        expect(samples).toBeGreaterThanOrEqual(16_000 * 2 - 640);
        // The link may report the drop (avatar: ...) or reconnect quietly; either way nothing is fatal.
        const avatarErrors = c.of('error');
        for (const error of avatarErrors) expect(error['fatal']).toBe(false);
        await c.next('session.state', (m) => m['state'] === 'listening' && m['previous'] !== undefined);
        c.send({ type: 'session.close' });
        expect(await c.closed()).toBe(1000);
        const reported = avatarErrors.length === 0 ? 'no error (link reconnected)' : `${avatarErrors.map((e) => String(e['code'])).join(',')} (not fatal)`;
        return `reply.done whole; ${reported} → listening → closed`;
      });
      expect(motion.connectionCount).toBe(0);
    } finally {
      await motion.stop();
    }
  });
});
