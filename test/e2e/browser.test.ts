/**
 * The demo page (GET /) in real headless Chromium against a real VoiceServer on loopback with real
 * VAD and fake providers. Chromium's fake microphone plays test/fixtures/padded-hello.16k.wav once.
 * Runs whenever /usr/bin/chromium exists, and always in CI (where a missing browser is a failure).
 */
import { existsSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import type { ChatMessage } from '../../src/providers/types.js';
import { VoiceServer } from '../../src/server/index.js';

const CHROMIUM = '/usr/bin/chromium';
const run = existsSync(CHROMIUM) || process.env['CI'] !== undefined;
const MIC_FILE = fileURLToPath(new URL('../fixtures/padded-hello.16k.wav', import.meta.url));

interface PageView {
  readonly state: string;
  readonly voice: string;
  readonly connected: boolean;
  readonly micOn: boolean;
  readonly framesReceived: number;
  readonly framesPlayed: number;
  readonly replies: number;
  readonly errors: number;
}

let server: VoiceServer | undefined;
let browser: Browser | undefined;
let proxy: { server: Server; sockets: Set<Socket> } | undefined;

afterEach(async () => {
  const errors = pageErrors;
  pageErrors = [];
  await browser?.close();
  browser = undefined;
  if (proxy !== undefined) {
    const { server: p, sockets } = proxy;
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => p.close(() => resolve()));
    proxy = undefined;
  }
  await server?.stop();
  server = undefined;
  expect(errors).toEqual([]);
});

function lastUserText(messages: readonly ChatMessage[]): string {
  return [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
}

const LONG_REPLY = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ') + '.';

function reply(messages: readonly ChatMessage[]): string {
  const text = lastUserText(messages);
  if (/table/i.test(text)) return 'A table for two, noted.';
  if (/talk/i.test(text)) return LONG_REPLY;
  return 'Hi. How can I help?';
}

/** A TCP proxy in front of the server whose connections the test can cut (the browser sees 1006). */
async function startProxy(target: number): Promise<number> {
  const sockets = new Set<Socket>();
  const p = createServer((inbound) => {
    const outbound = connect(target, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  proxy = { server: p, sockets };
  await new Promise<void>((resolve) => p.listen(0, '127.0.0.1', resolve));
  return (p.address() as { port: number }).port;
}

function cutConnections(): void {
  for (const socket of proxy?.sockets ?? []) socket.destroy();
}

let pageErrors: string[] = [];

async function open(options: { viaProxy?: boolean } = {}): Promise<{ page: Page; llm: FakeLlm; sent: string[]; received: string[] }> {
  const llm = new FakeLlm({ respond: (messages) => [reply(messages)] });
  server = new VoiceServer({
    port: 0,
    providers: { stt: new FakeStt({ recognize: () => 'hello there' }), llm, tts: new FakeTts({ msPerWord: 150 }) },
    vad: {},
  });
  const { port: serverPort } = await server.start();
  const port = options.viaProxy === true ? await startProxy(serverPort) : serverPort;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${MIC_FILE}%noloop`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const page = await browser.newPage();
  // Uncaught exceptions and console errors (a CSP violation is one) fail the test in afterEach.
  pageErrors = [];
  page.on('pageerror', (error) => void pageErrors.push(error.message));
  page.on('console', (message) => void (message.type() === 'error' && pageErrors.push(message.text())));
  // The JSON messages on the wire, both ways (binary frames as `<n bytes>`).
  const sent: string[] = [];
  const received: string[] = [];
  page.on('websocket', (socket) => {
    socket.on('framesent', (frame) => void sent.push(typeof frame.payload === 'string' ? frame.payload : `<${frame.payload.length} bytes>`));
    socket.on('framereceived', (frame) => void received.push(typeof frame.payload === 'string' ? frame.payload : `<${frame.payload.length} bytes>`));
  });
  const response = await page.goto(`http://127.0.0.1:${port}/`);
  expect(response?.headers()['content-type']).toBe('text/html; charset=utf-8');
  expect(response?.headers()['content-security-policy']).toContain("connect-src 'self' ws: wss:");
  await waitForView(page, (v) => v.connected && v.state === 'listening' && v.voice === 'silent');
  return { page, llm, sent, received };
}

function view(page: Page): Promise<PageView> {
  // Runs in the page; the tsconfig has no DOM lib, so reach `window` through globalThis.
  return page.evaluate(() => ({ ...(globalThis as unknown as { __voxstate: PageView }).__voxstate }));
}

async function waitForView(page: Page, ok: (v: PageView) => boolean, timeoutMs = 15_000): Promise<PageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await view(page);
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`page view never matched: ${JSON.stringify(v)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const types = (messages: readonly string[]) => messages.filter((m) => m.startsWith('{')).map((m) => (JSON.parse(m) as { type: string }).type);

describe.skipIf(!run)('demo page in headless Chromium', () => {
  it('a spoken turn: the page shows the transcript and the reply, plays the agent audio and returns to listening', async () => {
    const { page, sent, received } = await open();
    await page.getByRole('button', { name: 'Start microphone' }).click();

    const log = page.getByRole('list', { name: 'Conversation' });
    await expect.poll(() => log.innerText(), { timeout: 15_000 }).toContain('You: hello there');
    await expect.poll(() => log.innerText(), { timeout: 10_000 }).toContain('Agent: Hi. How can I help?');
    const done = await waitForView(page, (v) => v.replies === 1 && v.state.startsWith('listening') && v.framesPlayed > 0);
    // 5 words × 150 ms = 750 ms of agent audio in 20 ms frames; the page played them all.
    expect(done.framesReceived).toBe(38);
    await waitForView(page, (v) => v.framesPlayed === 38, 2_000);
    expect(done.errors).toBe(0);
    expect(await page.locator('#state').innerText()).toMatch(/^listening/);
    expect(await page.getByRole('list', { name: 'Turn timings' }).innerText()).toMatch(/speech end → first audio \d+ ms/);

    // On the wire: hello at 16 kHz, 20 ms microphone frames, progress reports for the reply.
    expect(JSON.parse(sent[0] ?? '{}')).toMatchObject({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } });
    expect(sent.filter((m) => m.startsWith('<')).every((m) => m === '<640 bytes>')).toBe(true);
    const replyId = (received.map((m) => (m.startsWith('{') ? (JSON.parse(m) as { type: string; replyId?: string }) : undefined)).find((m) => m?.type === 'reply.audio_start'))?.replyId;
    const progress = sent.filter((m) => m.includes('"playback.progress"')).map((m) => JSON.parse(m) as { replyId: string; playedMs: number });
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.every((p) => p.replyId === replyId)).toBe(true);
    expect(Math.max(...progress.map((p) => p.playedMs))).toBeGreaterThan(700);
    expect(types(received)).toContain('vad.speech_start');
    // Both regions reached the page: the user's voice went speaking and back to silent, shown as such.
    const states = received.filter((m) => m.includes('"session.state"')).map((m) => JSON.parse(m) as { state: string; voice: string });
    expect(states.some((m) => m.state === 'listening' && m.voice === 'speaking')).toBe(true);
    expect(states.at(-1)).toMatchObject({ state: 'listening', voice: 'silent' });
    expect(done.voice).toBe('silent');
    expect(await page.locator('#voice').innerText()).toBe('silent');
  });

  it('a typed turn through the text box gets the agent reply; the resume token never reaches the page', async () => {
    const { page, llm, received } = await open();
    const textbox = page.getByRole('textbox', { name: 'Message' });
    await textbox.fill('A table for two, please.');
    await textbox.press('Enter');
    const log = page.getByRole('list', { name: 'Conversation' });
    await expect.poll(() => log.innerText(), { timeout: 10_000 }).toContain('Agent: A table for two, noted.');
    expect(await log.innerText()).toContain('You (typed): A table for two, please.');
    await waitForView(page, (v) => v.replies === 1 && v.state.startsWith('listening') && v.framesPlayed > 0);
    expect(lastUserText(llm.requests[0] ?? [])).toBe('A table for two, please.');
    expect(await textbox.inputValue()).toBe('');

    const ready = received.find((m) => m.includes('"session.ready"'));
    const token = (JSON.parse(ready ?? '{}') as { resumeToken?: string }).resumeToken;
    expect(token).toBeTruthy();
    expect(await page.content()).not.toContain(token);
    expect(JSON.stringify(await view(page))).not.toContain(token);
  });

  it('the Stop button cancels the reply: the rest of its audio is dropped and the page returns to listening', async () => {
    const { page, sent } = await open();
    const textbox = page.getByRole('textbox', { name: 'Message' });
    await textbox.fill('Please talk for a while.');
    await textbox.press('Enter');
    await waitForView(page, (v) => v.framesPlayed >= 10);
    await page.getByRole('button', { name: 'Stop the agent' }).click();
    const log = page.getByRole('list', { name: 'Conversation' });
    await expect.poll(() => log.innerText(), { timeout: 5_000 }).toMatch(/Agent: word0 .*\(interrupted\)/);
    await waitForView(page, (v) => v.replies === 1 && v.state.startsWith('listening'));
    expect(sent.some((m) => m === '{"type":"session.interrupt"}')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the worklet's last report
    const stopped = await view(page);
    // 30 words × 150 ms = 225 frames; far fewer arrived, and nothing more plays after the cut.
    expect(stopped.framesReceived).toBeLessThan(150);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const later = await view(page);
    expect(later.framesPlayed).toBe(stopped.framesPlayed);
    // The frames still queued when the cut came were flushed, never played.
    expect(later.framesPlayed).toBeLessThan(later.framesReceived);
  });

  it('speaking over a reply pauses the page at the onset; the confirmed barge-in drops the rest and the user gets their turn', async () => {
    const { page, received } = await open();
    const textbox = page.getByRole('textbox', { name: 'Message' });
    await textbox.fill('Please talk for a while.');
    await textbox.press('Enter');
    await waitForView(page, (v) => v.framesPlayed >= 10);
    // The fake microphone: 0.5 s of silence, then "hello there, how are you today?" over the reply.
    await page.getByRole('button', { name: 'Start microphone' }).click();
    const onset = await waitForView(page, (v) => v.state.startsWith('interrupted'), 5_000);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const held = await view(page);
    const cut = await waitForView(page, (v) => v.state === 'listening' && v.replies === 1, 5_000);
    // No agent audio arrived while the reply was paused, and nothing of it played after the pause.
    expect(cut.framesReceived).toBe(held.framesReceived);
    expect(cut.framesPlayed - onset.framesPlayed).toBeLessThanOrEqual(8);
    const log = page.getByRole('list', { name: 'Conversation' });
    await expect.poll(() => log.innerText(), { timeout: 5_000 }).toMatch(/Agent: word0 .*\(interrupted\)/);
    const messages = received.filter((m) => m.startsWith('{')).map((m) => JSON.parse(m) as Record<string, unknown>);
    expect(messages.find((m) => m['type'] === 'interruption.confirmed')).toMatchObject({ replyId: '1', by: 'voice' });
    expect(messages.some((m) => m['type'] === 'session.state' && m['state'] === 'interrupted.confirming' && m['voice'] === 'speaking')).toBe(true);
    // The barge-in was the user's turn: transcribed and answered.
    await expect.poll(() => log.innerText(), { timeout: 15_000 }).toContain('You: hello there');
    await expect.poll(() => log.innerText(), { timeout: 10_000 }).toContain('Agent: Hi. How can I help?');
    await waitForView(page, (v) => v.replies === 2 && v.state === 'listening' && v.framesPlayed > cut.framesPlayed);
  });

  it('after a dropped connection the page resumes the same session with its token and the conversation goes on', async () => {
    const { page, llm, sent } = await open({ viaProxy: true });
    const textbox = page.getByRole('textbox', { name: 'Message' });
    await textbox.fill('A table for two, please.');
    await textbox.press('Enter');
    await waitForView(page, (v) => v.replies === 1 && v.state.startsWith('listening'));

    cutConnections();
    await expect.poll(() => page.locator('#conn').innerText(), { timeout: 10_000 }).toBe('connected (resumed)');
    const hello = JSON.parse(sent[0] ?? '{}') as { type: string };
    const resume = sent.filter((m) => m.includes('"session.resume"')).map((m) => JSON.parse(m) as Record<string, unknown>);
    expect(hello.type).toBe('session.hello');
    expect(resume).toHaveLength(1);
    expect(resume[0]).toMatchObject({ type: 'session.resume', protocol: 1 });
    expect(await page.content()).not.toContain(String(resume[0]?.['resumeToken']));

    await textbox.fill('Hello again');
    await textbox.press('Enter');
    await waitForView(page, (v) => v.replies === 2 && v.state.startsWith('listening'));
    // The second request carries the first turn: the same session, history intact.
    expect(llm.requests[1]?.map((m) => m.content)).toEqual(expect.arrayContaining(['A table for two, please.', 'A table for two, noted.', 'Hello again']));
  });
});
