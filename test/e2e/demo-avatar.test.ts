/**
 * The demo page's avatar in real headless Chromium, against a real VoiceServer on loopback with the
 * real VAD, the embedded local Motion Server (what `npm start` attaches), pocketsphinx hearing the
 * page's microphone (the system ffmpeg's `asr` filter) and Flite speaking the replies. Chromium's
 * fake microphone plays test/fixtures/padded-hello.16k.wav once ("Hello there, how are you today?").
 *
 * What a user would see is read from the page itself: the canvas pixels (hashed at intervals), the
 * conversation, the live transcript and the mini statechart. Screenshots go to test-artifacts/demo-avatar/.
 * Runs whenever /usr/bin/chromium and ffmpeg's asr filter exist, and always in CI.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import { FakeLlm } from '../../src/providers/fake/index.js';
import { FliteTts, PocketsphinxStt } from '../../src/providers/local/index.js';
import type { ChatMessage } from '../../src/providers/types.js';
import { VoiceServer } from '../../src/server/index.js';

const CHROMIUM = '/usr/bin/chromium';
const hasAsr = (() => {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-filters'], { encoding: 'utf8' });
  return r.status === 0 && /\basr\s+A->A/.test(r.stdout);
})();
const run = (existsSync(CHROMIUM) && hasAsr) || process.env['CI'] !== undefined;
const MIC_FILE = fileURLToPath(new URL('../fixtures/padded-hello.16k.wav', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/demo-avatar/', import.meta.url));

interface PageView {
  readonly state: string;
  readonly voice: string;
  readonly connected: boolean;
  readonly sessionId: string;
  readonly framesReceived: number;
  readonly framesPlayed: number;
  readonly playedMs: number;
  readonly replies: number;
  readonly transcripts: number;
  readonly partials: number;
  readonly errors: number;
  readonly avatarKeyframes: number;
  readonly avatarShown: number;
  readonly avatarShownAfterLast: number;
  readonly avatarKeyframe: number;
  readonly avatarResets: number;
}

/** What the in-page recorder (RECORDER) collected. */
interface Recording {
  /** Every 50 ms: the canvas hash, the turn state, the keyframe on the canvas, the reply audio played. */
  readonly samples: { t: number; hash: string; state: string; keyframe: number; playedMs: number }[];
  /** The turn node lit in the mini statechart, each time it changed. */
  readonly turn: string[];
  /** The voice node lit, each time it changed. */
  readonly voice: string[];
  /** The live transcript each time it changed, with the number of final transcripts shown by then. */
  readonly partials: { text: string; finals: number }[];
}

/** Installed in the page after load: hashes the canvas pixels and records the chart and the live transcript. */
const RECORDER = `(() => {
  const canvas = document.getElementById('avatar');
  const g = canvas.getContext('2d');
  const v = window.__voxstate;
  const hash = () => {
    const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
    let h = 0x811c9dc5;
    for (let i = 0; i < d.length; i += 4) { h ^= d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (d[i + 3] << 24); h = Math.imul(h, 16777619); }
    return (h >>> 0).toString(16);
  };
  const rec = { samples: [], turn: [], voice: [], partials: [] };
  window.__canvasHash = hash;
  window.__recording = rec;
  window.__recorder = setInterval(() => rec.samples.push({ t: performance.now(), hash: hash(), state: v.state, keyframe: v.avatarKeyframe, playedMs: v.playedMs }), 50);
  const lit = (region) => { const on = document.querySelector('#chart [data-region="' + region + '"] .on'); return on ? on.dataset.node : ''; };
  new MutationObserver(() => {
    for (const [region, list] of [['turn', rec.turn], ['voice', rec.voice]]) { const node = lit(region); if (list[list.length - 1] !== node) list.push(node); }
  }).observe(document.getElementById('chart'), { subtree: true, attributes: true, attributeFilter: ['class'] });
  const partial = document.getElementById('partial');
  new MutationObserver(() => { if (partial.textContent) rec.partials.push({ text: partial.textContent, finals: v.transcripts }); })
    .observe(partial, { childList: true, characterData: true, subtree: true });
})()`;

let server: VoiceServer | undefined;
let motion: LocalMotionServer | undefined;
let browser: Browser | undefined;
const closers: (() => Promise<void>)[] = [];
let pageErrors: string[] = [];

afterEach(async () => {
  const errors = pageErrors;
  pageErrors = [];
  await browser?.close();
  browser = undefined;
  await server?.stop();
  server = undefined;
  await motion?.stop();
  motion = undefined;
  for (const close of closers.splice(0)) await close();
  expect(errors).toEqual([]);
});

function lastUserText(messages: readonly ChatMessage[]): string {
  return [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
}

const LONG_REPLY =
  'Let me tell you about this page. Every word I say goes to the motion server, which answers with keyframes for my face. ' +
  'The page draws each keyframe when its audio is heard. My jaw opens with the loudness of my voice, my eyes blink now and then, ' +
  'and my head sways a little as I speak. If you talk over me, I stop, and my face goes back to rest.';

function reply(messages: readonly ChatMessage[]): string {
  const heard = lastUserText(messages);
  if (/talk/i.test(heard)) return LONG_REPLY;
  return `You said: ${heard}. I can hear you clearly, and my face moves while I talk.`;
}

async function open(): Promise<{ page: Page; llm: FakeLlm; received: string[] }> {
  motion = new LocalMotionServer();
  const info = await motion.start({ port: 0, host: '127.0.0.1', apiKey: 'demo-avatar-key', appId: 'voxstate-local', avatars: ['local-avatar'] });
  const stt = new PocketsphinxStt();
  const probe = await stt.probe();
  expect(probe.ok, probe.message).toBe(true);
  await stt.prepare();
  const tts = new FliteTts();
  closers.push(() => stt.close(), () => tts.close());
  const llm = new FakeLlm({ respond: (messages) => [reply(messages)] });
  server = new VoiceServer({
    port: 0,
    providers: { stt, llm, tts },
    vad: {},
    motion: {
      apiKey: 'demo-avatar-key',
      appId: 'voxstate-local',
      avatarId: 'local-avatar',
      consoleEndpointUrl: info.consoleEndpointUrl,
      ingressEndpointUrl: info.ingressEndpointUrl,
    },
  });
  const { port } = await server.start();
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
      // Played once (%noloop): a looping file would speak over the reply and barge in.
      `--use-file-for-fake-audio-capture=${MIC_FILE}%noloop`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
  pageErrors = [];
  page.on('pageerror', (error) => void pageErrors.push(error.message));
  page.on('console', (message) => void (message.type() === 'error' && pageErrors.push(message.text())));
  const received: string[] = [];
  page.on('websocket', (socket) => {
    socket.on('framereceived', (frame) => void (typeof frame.payload === 'string' && received.push(frame.payload)));
  });
  await page.goto(`http://127.0.0.1:${port}/`);
  await waitForView(page, (v) => v.connected && v.state === 'listening' && v.voice === 'silent');
  // The session's avatar link is up (the local Motion Server has its connection).
  const deadline = Date.now() + 5_000;
  while (motion.connectionCount < 1) {
    if (Date.now() > deadline) throw new Error('the avatar link never connected');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await page.evaluate(RECORDER);
  return { page, llm, received };
}

function view(page: Page): Promise<PageView> {
  return page.evaluate(() => ({ ...(globalThis as unknown as { __voxstate: PageView }).__voxstate }));
}

async function waitForView(page: Page, ok: (v: PageView) => boolean, timeoutMs = 15_000): Promise<PageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await view(page);
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`page view never matched: ${JSON.stringify(v)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const canvasHash = (page: Page): Promise<string> => page.evaluate('window.__canvasHash()') as Promise<string>;
const recording = (page: Page): Promise<Recording> => page.evaluate('window.__recording') as Promise<Recording>;

async function screenshot(page: Page, name: string, what: string, canvasOnly = false): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = `${ARTIFACTS}${name}.png`;
  if (canvasOnly) await page.locator('#avatar').screenshot({ path });
  else await page.screenshot({ path, fullPage: true });
  process.stdout.write(`screenshot: ${path} — ${what}\n`);
  return path;
}

/** `list` contains `wanted` in order (other entries may come between). */
function inOrder(list: readonly string[], wanted: readonly string[]): boolean {
  let i = 0;
  for (const item of list) if (item === wanted[i]) i++;
  return i === wanted.length;
}

describe.skipIf(!run)('demo page avatar in headless Chromium', () => {
  it('a spoken turn: the live transcript, the reply audio, and the face animated by the avatar frames in step with that audio', async () => {
    const { page, received } = await open();
    // At rest: the face is drawn and still, the chart lights listening, the inspect link names the session.
    const rest = await canvasHash(page);
    const ready = await view(page);
    expect(await page.locator('#inspect').getAttribute('href')).toBe(`/inspect?session=${encodeURIComponent(ready.sessionId)}`);
    expect(await page.locator('#inspect').isVisible()).toBe(true);
    expect(await page.locator('#chart [data-region="turn"] .on').innerText()).toBe('listening');
    await screenshot(page, '01-listening', 'the page before the turn: the face at rest (dimmed: no avatar frames yet), "listening" and "silent" lit in the chart, the inspect link');

    await page.getByRole('button', { name: 'Start microphone' }).click();
    const log = page.getByRole('list', { name: 'Conversation' });
    // pocketsphinx heard the fake microphone through the page's capture worklet.
    await expect.poll(() => log.innerText(), { timeout: 20_000 }).toMatch(/You: hello there how are you/);
    await expect.poll(() => log.innerText(), { timeout: 15_000 }).toMatch(/Agent: You said: hello there how are you/);

    // While the agent speaks the face moves: take a page screenshot and two close-ups of the face.
    const speaking = await waitForView(page, (v) => v.state === 'speaking' && v.avatarKeyframe >= 10);
    await screenshot(page, '02-speaking', `the agent speaking: transcript and reply text, "speaking" lit, the face at keyframe ${speaking.avatarKeyframe}`);
    await screenshot(page, '03-face-a', 'the face mid-reply', true);
    const later = await waitForView(page, (v) => v.state === 'speaking' && v.avatarKeyframe >= speaking.avatarKeyframe + 12);
    await screenshot(page, '04-face-b', `the face ${(later.avatarKeyframe - speaking.avatarKeyframe) * 40} ms of audio later`, true);

    const done = await waitForView(page, (v) => v.replies === 1 && v.state === 'listening' && v.framesPlayed > 0 && v.framesPlayed === v.framesReceived, 20_000);
    // After the last audio the face eases back to exactly its rest pose.
    await expect.poll(() => canvasHash(page), { timeout: 3_000 }).toBe(rest);
    await screenshot(page, '05-done', 'after the turn: the conversation, the turn timings, the face back at rest, "listening" lit');
    await page.evaluate('clearInterval(window.__recorder)');
    const rec = await recording(page);
    expect(done.errors).toBe(0);

    // The reply audio played: Flite's answer, several seconds of 20 ms frames, all of them.
    expect(done.framesReceived).toBeGreaterThan(100);
    expect(done.playedMs).toBeGreaterThan(2_000);

    // Avatar frames were drawn: the canvas pixels changed from sample to sample while keyframes were shown...
    const animated = rec.samples.filter((s) => s.keyframe >= 0);
    const distinct = new Set(animated.map((s) => s.hash));
    expect(animated.length).toBeGreaterThan(20);
    expect(distinct.size).toBeGreaterThan(animated.length / 2);
    expect(animated.filter((s) => s.hash === rest).length).toBeLessThan(animated.length / 10);
    // ...and only then: before the reply and after it the face is the rest pose, unchanged.
    const firstAnimated = rec.samples.indexOf(animated[0]!);
    expect(rec.samples.slice(0, firstAnimated).every((s) => s.hash === rest)).toBe(true);
    expect(rec.samples.at(-1)?.hash).toBe(rest);
    // Every keyframe is drawn when its audio is heard: keyframe k (40 ms each) against the reply
    // audio the playout worklet had played at that moment (its reports come every 100 ms).
    const offsets = animated.map((s) => Math.abs(s.keyframe * 40 - s.playedMs));
    expect(Math.max(...offsets), JSON.stringify(animated.slice(0, 40))).toBeLessThan(300);
    process.stdout.write(
      `avatar: ${done.avatarKeyframes} keyframes received, ${done.avatarShown} drawn (${done.avatarShownAfterLast} after the reply's last frames had arrived), ` +
        `${distinct.size} distinct canvases in ${animated.length} samples, keyframe vs played audio: max ${Math.round(Math.max(...offsets))} ms apart\n`,
    );
    // The Motion Server answered far faster than real time, so most keyframes reached the canvas
    // after the last frames of the reply had arrived: drawn on the audio clock, not on arrival.
    expect(done.avatarKeyframes).toBeGreaterThan(50);
    expect(done.avatarShown).toBeGreaterThan(done.avatarKeyframes * 0.6);
    expect(done.avatarShownAfterLast).toBeGreaterThan(done.avatarShown / 2);
    const avatarMessages = received.filter((m) => m.includes('"avatar.frames"')).map((m) => JSON.parse(m) as { conversationId: string; isLast: boolean });
    expect(new Set(avatarMessages.map((m) => m.conversationId)).size).toBe(1);
    expect(avatarMessages.filter((m) => m.isLast)).toHaveLength(1);

    // The live transcript showed what was heard before the final transcript took its place.
    expect(done.partials).toBeGreaterThan(0);
    expect(rec.partials.length).toBeGreaterThan(0);
    expect(rec.partials[0]).toMatchObject({ finals: 0 });
    expect(rec.partials[0]?.text).toMatch(/hello/);
    expect(await page.locator('#partial').innerText()).toBe('');
    // The mini statechart lit every turn state the server announced, in order (streaming recognition
    // had the transcript by the end of the turn, so the server may go from listening straight to
    // thinking), and the user's voice speaking, then silent again.
    const announced = received.filter((m) => m.includes('"session.state"')).map((m) => (JSON.parse(m) as { state: string }).state.split('.')[0] ?? '');
    const changes = (list: readonly string[]) => list.filter((item, i) => item !== list[i - 1]);
    expect(changes(rec.turn)).toEqual(changes(announced));
    expect(inOrder(rec.turn, ['thinking', 'speaking', 'listening']), rec.turn.join(' → ')).toBe(true);
    expect(inOrder(rec.voice, ['speaking', 'silent']), rec.voice.join(' → ')).toBe(true);
  });

  it('stopping the agent resets the face at once, the rest of that reply never moves it, and the next reply animates it again', async () => {
    const { page, received } = await open();
    const rest = await canvasHash(page);
    const textbox = page.getByRole('textbox', { name: 'Message' });
    await textbox.fill('Please talk for a while.');
    await textbox.press('Enter');
    await waitForView(page, (v) => v.state === 'speaking' && v.avatarKeyframe >= 25);
    expect(await canvasHash(page)).not.toBe(rest);

    await page.getByRole('button', { name: 'Stop the agent' }).click();
    const stopped = await waitForView(page, (v) => v.avatarResets > 0 && v.avatarKeyframe === -1, 2_000);
    expect(await canvasHash(page)).toBe(rest);
    await screenshot(page, '06-stopped', 'the long reply cut by "Stop the agent": "(interrupted)" in the conversation, the face back at rest');
    await waitForView(page, (v) => v.state === 'listening' && v.replies === 1);
    const log = page.getByRole('list', { name: 'Conversation' });
    await expect.poll(() => log.innerText(), { timeout: 5_000 }).toMatch(/Agent: Let me\b.*\(interrupted\)/); // how much was heard depends on when the click lands
    // The cut reply's frames (had more arrived) are dropped: for the next half second the face stays still.
    const marker = (await recording(page)).samples.length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = (await recording(page)).samples.slice(marker);
    expect(after.length).toBeGreaterThan(4);
    expect(after.every((s) => s.hash === rest && s.keyframe === -1)).toBe(true);
    expect(received.some((m) => m.includes('"interruption.confirmed"'))).toBe(true);
    // The avatar link relayed the barge-in too (the page resets on either).
    expect(received.some((m) => m.includes('"avatar.interrupt"'))).toBe(true);

    // The next reply has its own conversation id, and the face follows it.
    await textbox.fill('Hello again');
    await textbox.press('Enter');
    const next = await waitForView(page, (v) => v.replies === 2 || (v.state === 'speaking' && v.avatarKeyframe >= 5));
    expect(next.avatarShown).toBeGreaterThan(stopped.avatarShown);
    await waitForView(page, (v) => v.replies === 2 && v.state === 'listening', 20_000);
    const ids = new Set(received.filter((m) => m.includes('"avatar.frames"')).map((m) => (JSON.parse(m) as { conversationId: string }).conversationId));
    expect(ids.size).toBe(2);
  });
});
