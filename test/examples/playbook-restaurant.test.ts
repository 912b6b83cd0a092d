/**
 * The restaurant playbook example, end to end over the wire: script.txt sent line by line as typed
 * turns through a loopback VoiceServer running the example's playbook and its offline model, with
 * the offline voice's fakes for STT/TTS. It walks every stage with no error.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import playbook, { offlineLlm } from '../../examples/playbook-restaurant/playbook.js';
import { isPlaybookOfThisLibrary } from '../../src/playbook/define.js';
import { FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { RawClient } from '../server/helpers.js';

const script = readFileSync(fileURLToPath(new URL('../../examples/playbook-restaurant/script.txt', import.meta.url)), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line.length > 0 && !line.startsWith('#'));

let server: VoiceServer | undefined;
let client: RawClient | undefined;
afterAll(async () => {
  await client?.close();
  await server?.stop();
});

describe('examples/playbook-restaurant over the wire', () => {
  it('script.txt walks every stage: the stage path, the tool calls, what was spoken and the history', async () => {
    // The example's `import 'voxstate'` is the copy this test runs (the sources, through vitest.config.ts).
    expect(isPlaybookOfThisLibrary(playbook)).toBe(true);
    const replies: string[] = [];
    server = new VoiceServer({
      port: 0,
      vad: false,
      playbook,
      providers: { stt: new FakeStt({ recognize: () => '' }), llm: offlineLlm, tts: new FakeTts({ msPerWord: 5 }) },
      hooks: { onReply: ({ text }) => void replies.push(text) },
    });
    const { url } = await server.start();
    client = new RawClient(url);
    await client.hello();
    const c = client;
    /** The agent has answered (and spoken any stage greeting): listening, and no new message for 300 ms. */
    const settled = async (): Promise<void> => {
      for (let stable = 0, seen = -1; stable < 3; ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const state = c.of('session.state').at(-1)?.['state'];
        stable = state === 'listening' && c.messages.length === seen ? stable + 1 : 0;
        seen = c.messages.length;
      }
    };
    await settled(); // the first stage's greeting
    for (const line of script) {
      c.send({ type: 'user.text', text: line });
      await c.next('reply.done', (m) => m['replyId'] !== undefined && c.of('reply.done').length > 0);
      await settled();
    }
    await client.next('stage.change', (m) => m['to'] === null);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const path = client.of('stage.change').map((m) => m['to']);
    expect(path).toEqual(['greet', 'party', 'when', 'confirm', 'done', null]);
    expect(client.of('error')).toEqual([]);
    expect(client.of('interruption.confirmed')).toEqual([]);
    expect(client.of('tool.start').map((m) => [m['name'], m['arguments']])).toEqual([
      ['set_party_size', { people: 4 }],
      ['set_date_time', { day: 'saturday', time: '19:30' }],
      ['confirm_booking', { people: 4, day: 'saturday', time: '19:30' }],
    ]);
    expect(client.of('tool.end').every((m) => m['ok'] === true)).toBe(true);
    const spoken = client.of('reply.done').map((m) => String(m['text']));
    expect(spoken[0]).toMatch(/book a table/i);
    expect(spoken.some((t) => /Shall I book it\?/.test(t))).toBe(true);
    expect(spoken.at(-1)).toMatch(/Goodbye/);
    // What the hooks saw is what the client heard.
    expect(replies).toEqual(spoken);
  });
});
