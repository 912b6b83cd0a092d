/** A playbook over the wire: stage.change with reasons, hooks, and the stage kept across a resume (also from the store on another server). */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { z } from 'zod';
import { definePlaybook } from '../../src/playbook/define.js';
import type { Playbook } from '../../src/playbook/types.js';
import { defineTool } from '../../src/tools/define.js';
import type { Tool } from '../../src/providers/types.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { MemorySessionStore } from '../../src/session/store.js';
import { RawClient } from './helpers.js';

const servers: VoiceServer[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(() => undefined);

const setParty: Tool = { name: 'set_party_size', description: 'party size', parameters: { type: 'object', properties: { n: { type: 'number' } } }, execute: async () => ({ ok: true }) };

const playbook: Playbook = {
  id: 'booking',
  initialStage: 'greet',
  stageIds: ['greet', 'party', 'done'],
  stages: {
    greet: { systemPrompt: 'Greet.', greeting: 'Welcome! How many people?' },
    party: { systemPrompt: 'Ask for the party size.', tools: [setParty] },
    done: { systemPrompt: 'Say goodbye.' },
  },
  transitions: [
    { from: 'greet', to: 'party', condition: { type: 'keyword', keywords: ['table'] } },
    { from: 'party', to: 'done', condition: { type: 'toolCall', tool: 'set_party_size' } },
    { from: 'done', to: 'end', condition: { type: 'keyword', keywords: ['bye'] } },
  ],
};

async function start(options: Partial<VoiceServerOptions> = {}): Promise<{ server: VoiceServer; url: string }> {
  const llm = new FakeLlm({
    respond: (messages) => {
      const last = messages.at(-1);
      if (last?.role === 'user' && /four/.test(last.content)) return [{ toolCall: { name: 'set_party_size', arguments: '{"n":4}' } }];
      return ['Noted.'];
    },
  });
  const server = new VoiceServer({ port: 0, providers: { stt: new FakeStt({ recognize: () => '' }), llm, tts: new FakeTts({ msPerWord: 20 }) }, vad: false, playbook, ...options });
  servers.push(server);
  return { server, url: (await server.start()).url };
}

function client(url: string): RawClient {
  const c = new RawClient(url);
  clients.push(c);
  return c;
}

describe('playbooks over the wire', () => {
  it('sends stage.change with the real reason at start, each transition and completion, and calls the hooks', async () => {
    const seen: string[] = [];
    const { url } = await start({
      hooks: {
        onStageEnter: ({ stage }) => void seen.push(`enter ${stage}`),
        onStageExit: ({ stage }) => void seen.push(`exit ${stage}`),
        onTransition: ({ from, to, reason }) => void seen.push(`${String(from)}→${String(to)} ${reason.kind}`),
        onPlaybookComplete: ({ from }) => void seen.push(`complete from ${String(from)}`),
      },
    });
    const c = client(url);
    await c.hello();
    expect(await c.next('stage.change')).toEqual({ type: 'stage.change', from: null, to: 'greet', reason: { kind: 'start' } });
    expect((await c.next('reply.done'))['text']).toBe('Welcome! How many people?');
    c.send({ type: 'user.text', text: 'a table please' });
    expect(await c.next('stage.change', (m) => m['to'] === 'party')).toMatchObject({ from: 'greet', reason: { kind: 'keyword', keyword: 'table' } });
    c.send({ type: 'user.text', text: 'four of us' });
    expect(await c.next('stage.change', (m) => m['to'] === 'done')).toMatchObject({ from: 'party', reason: { kind: 'toolCall', tool: 'set_party_size' } });
    await c.next('tool.end');
    c.send({ type: 'user.text', text: 'bye' });
    expect(await c.next('stage.change', (m) => m['to'] === null)).toMatchObject({ from: 'done', reason: { kind: 'keyword', keyword: 'bye' } });
    expect(seen).toEqual([
      'enter greet',
      'exit greet',
      'greet→party keyword',
      'enter party',
      'exit party',
      'party→done toolCall',
      'enter done',
      'exit done',
      'done→null keyword',
      'complete from done',
    ]);
  });

  it('a session resumed on another server sharing the store is in the same stage (session.resumed carries it)', async () => {
    const store = new MemorySessionStore();
    const first = await start({ session: { store } });
    const c = client(first.url);
    const ready = await c.hello();
    await c.next('reply.done');
    c.send({ type: 'user.text', text: 'a table please' });
    await c.next('stage.change', (m) => m['to'] === 'party');
    await c.next('reply.done', (m) => m['replyId'] === '2');
    await first.server.stop();
    const second = await start({ session: { store } });
    const d = client(second.url);
    await d.opened();
    d.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
    expect(await d.next('session.resumed')).toMatchObject({ stage: 'party' });
    d.send({ type: 'user.text', text: 'four of us' });
    expect(await d.next('stage.change', (m) => m['to'] === 'done')).toMatchObject({ from: 'party', reason: { kind: 'toolCall', tool: 'set_party_size' } });
  });

  it('stage data: hooks and tools replace it, the record keeps it, a resume on another server restores it', async () => {
    const seenByTool: unknown[] = [];
    const addParty = defineTool({
      name: 'set_party_size',
      description: 'party size',
      parameters: z.object({ n: z.number().int().positive() }),
      execute: ({ n }, { stage }) => {
        const data = stage?.data as { sizes: number[] };
        seenByTool.push(data);
        stage?.setData({ sizes: [...data.sizes, n] });
        return { ok: true };
      },
    });
    const withData = definePlaybook({
      id: 'booking-data',
      initialStage: 'greet',
      stages: {
        greet: {
          systemPrompt: 'Greet.',
          data: { visits: 0 },
          onEnter: ({ data, setData }) => setData({ visits: data.visits + 1 }),
        },
        party: { systemPrompt: 'Ask for the party size.', tools: [addParty], data: { sizes: [] as number[] } },
      },
      transitions: [
        { from: 'greet', to: 'party', condition: { type: 'keyword', keywords: ['table'] } },
        { from: 'party', to: 'end', condition: { type: 'keyword', keywords: ['bye'] } },
      ],
    });
    const store = new MemorySessionStore();
    const llm = () =>
      new FakeLlm({
        respond: (messages) => {
          const last = messages.at(-1);
          const n = last?.role === 'user' ? { four: 4, three: 3 }[last.content.split(' ')[0] ?? ''] : undefined;
          return n === undefined ? ['Noted.'] : [{ toolCall: { name: 'set_party_size', arguments: JSON.stringify({ n }) } }];
        },
      });
    const first = await start({ playbook: withData, session: { store }, providers: { stt: new FakeStt({ recognize: () => '' }), llm: llm(), tts: new FakeTts({ msPerWord: 20 }) } });
    const c = client(first.url);
    const ready = await c.hello();
    const sessionId = String(ready['sessionId']);
    c.send({ type: 'user.text', text: 'a table please' });
    await c.next('stage.change', (m) => m['to'] === 'party');
    c.send({ type: 'user.text', text: 'four of us' });
    await c.next('tool.end');
    await c.next('reply.done', (m) => m['text'] === 'Noted.');
    await expect.poll(async () => {
      const stored = await store.get(sessionId);
      return stored?.status === 'live' ? stored.record.playbook : undefined;
    }).toEqual({ stage: 'party', data: { greet: { visits: 1 }, party: { sizes: [4] } } });
    await first.server.stop();

    const second = await start({ playbook: withData, session: { store }, providers: { stt: new FakeStt({ recognize: () => '' }), llm: llm(), tts: new FakeTts({ msPerWord: 20 }) } });
    const d = client(second.url);
    await d.opened();
    d.send({ type: 'session.resume', protocol: 1, sessionId, resumeToken: ready['resumeToken'] });
    expect(await d.next('session.resumed')).toMatchObject({ stage: 'party' });
    d.send({ type: 'user.text', text: 'three more' });
    await d.next('tool.end');
    await d.next('reply.done', (m) => m['text'] === 'Noted.');
    // The tool on the second server saw the data written on the first.
    expect(seenByTool).toEqual([{ sizes: [] }, { sizes: [4] }]);
    await expect.poll(async () => {
      const stored = await store.get(sessionId);
      return stored?.status === 'live' ? stored.record.playbook : undefined;
    }).toEqual({ stage: 'party', data: { greet: { visits: 1 }, party: { sizes: [4, 3] } } });
  });

  it('a client picks a named playbook; an unknown name is refused', async () => {
    const { url } = await start({ playbook: undefined, playbooks: { booking: playbook } });
    const c = client(url);
    await c.opened();
    c.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', sampleRate: 16000, format: 'pcm16' }, options: { playbook: 'booking' } });
    expect(await c.next('stage.change')).toMatchObject({ to: 'greet' });
    const d = client(url);
    await d.opened();
    d.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', sampleRate: 16000, format: 'pcm16' }, options: { playbook: 'nope' } });
    expect(await d.next('error')).toMatchObject({ code: 'session_invalid_state', fatal: true });
  });
});
