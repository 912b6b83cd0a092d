/**
 * The inspector page (GET /inspect) in real headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core) against a real VoiceServer on loopback: real Silero VAD, fake STT/LLM/TTS with
 * some latency so every state lasts long enough to be seen. The session is started, and then
 * spoken to, by a loopback WebSocket client streaming test/fixtures/hello.16k.wav in real time.
 * Screenshots go to test-artifacts/ (git-ignored); their paths are printed.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { fixture, RawClient, streamRealtime } from '../server/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const USER_SAID = 'hello there how are you today';
const AGENT_SAYS = 'I am fine, thank you for asking. How can I help you today?';

let server: VoiceServer | undefined;
let browser: Browser | undefined;
let speaker: RawClient | undefined;
let pageErrors: string[] = [];

afterEach(async () => {
  const errors = pageErrors;
  pageErrors = [];
  await browser?.close();
  browser = undefined;
  await speaker?.close();
  speaker = undefined;
  await server?.stop();
  server = undefined;
  expect(errors).toEqual([]);
});

async function openPage(url: string): Promise<Page> {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // Uncaught exceptions and console errors (a CSP violation is one) fail the test in afterEach.
  page.on('pageerror', (error) => void pageErrors.push(error.message));
  page.on('console', (message) => void (message.type() === 'error' && pageErrors.push(message.text())));
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  return page;
}

async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = `${ARTIFACTS}${name}`;
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

/**
 * Records, in the page, every statechart box that becomes highlighted (class `active` added), in
 * order, from the class mutations themselves: a state highlighted and unhighlighted within one
 * batch of the stream is still seen.
 */
const RECORD_HIGHLIGHTS = `(() => {
  const seen = [];
  globalThis.__highlighted = seen;
  new MutationObserver((records) => {
    const next = new Map();
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i];
      const after = next.has(r.target) ? next.get(r.target) : r.target.className;
      next.set(r.target, r.oldValue || '');
      r.after = after;
    }
    for (const r of records) {
      const was = (r.oldValue || '').split(' ').includes('active');
      const is = r.after.split(' ').includes('active');
      if (!was && is) seen.push(r.target.dataset.id);
    }
  }).observe(document.getElementById('chart'), { attributes: true, attributeFilter: ['class'], attributeOldValue: true, subtree: true });
})()`;

/** The turn region's public states among the highlighted boxes, in order. */
const TURN_STATES: Readonly<Record<string, string>> = {
  'session.active.turn.listening': 'listening',
  'session.active.turn.transcribing': 'transcribing',
  'session.active.turn.replying.thinking': 'thinking',
  'session.active.turn.replying.speaking': 'speaking',
  'session.active.turn.replying.interrupted': 'interrupted',
  'session.active.turn.replying.preemptive': 'preemptive',
  'session.active.turn.routing': 'routing',
};

async function highlightedTurnStates(page: Page): Promise<string[]> {
  const ids = await page.evaluate<string[]>('globalThis.__highlighted.slice()');
  return ids.flatMap((id) => (TURN_STATES[id] === undefined ? [] : [TURN_STATES[id] as string]));
}

describe('the inspector page in headless Chromium', () => {
  it('lists a session started before it opened, then shows it going listening → transcribing → thinking → speaking → listening', async () => {
    server = new VoiceServer({
      port: 0,
      providers: {
        stt: new FakeStt({ recognize: () => USER_SAID, latencyMs: 400 }),
        llm: new FakeLlm({ respond: () => [AGENT_SAYS], firstTokenMs: 400 }),
        tts: new FakeTts({ msPerWord: 180 }),
      },
      vad: {},
    });
    const { port, url } = await server.start();
    speaker = new RawClient(url);
    const ready = await speaker.hello({ transport: 'websocket', sampleRate: 16000 });
    const sessionId = ready['sessionId'] as string;

    const page = await openPage(`http://127.0.0.1:${port}/inspect`);
    // Listed, as text, within 2 s of opening.
    const row = page.locator(`tr[data-session="${sessionId}"]`);
    await row.waitFor({ state: 'visible', timeout: 2_000 });
    expect(await row.locator('td.id').innerText()).toBe(sessionId);
    expect(await row.locator('td.state').innerText()).toBe('listening');
    await screenshot(page, 'inspect-1-session-listed.png');

    await row.click();
    const box = (id: string) => page.locator(`#chart .state[data-id="${id}"]`);
    await expect.poll(() => box('session.active.turn.listening').getAttribute('class'), { timeout: 5_000 }).toContain('active');
    // Every region of the session is drawn, each with its current state highlighted.
    for (const id of ['session.active.voice.silent', 'session.active.endpoint.idle', 'session.active.connection.online']) expect(await box(id).getAttribute('class')).toContain('active');
    expect(await box('session.active.turn.transcribing').getAttribute('class')).not.toContain('active');
    await page.evaluate(RECORD_HIGHLIGHTS);

    const { pcm, sampleRate } = fixture('hello.16k.wav');
    await streamRealtime((frame) => speaker?.sendAudio(frame), pcm, sampleRate, 900);
    await expect.poll(() => box('session.active.turn.replying.speaking').getAttribute('class'), { timeout: 15_000 }).toContain('active');
    await screenshot(page, 'inspect-2-speaking.png');

    await speaker.next('reply.done');
    await expect.poll(() => highlightedTurnStates(page), { timeout: 10_000 }).toEqual(['transcribing', 'thinking', 'speaking', 'listening']);
    expect(await box('session.active.turn.listening').getAttribute('class')).toContain('active');
    // The trail says the same in words.
    expect(await page.locator('#trail').innerText()).toMatch(/turn: listening\.waiting → transcribing\.pending → replying\.thinking → replying\.speaking → listening\.waiting/);

    // The transcript, the log of events, transitions and provider calls, the turn's waterfall.
    const transcript = page.locator('#transcript');
    await expect.poll(() => transcript.innerText(), { timeout: 5_000 }).toContain(`agent: ${AGENT_SAYS}`);
    expect(await transcript.innerText()).toContain(`user: ${USER_SAID}`);
    const log = page.locator('#log');
    expect(await log.locator('div.event', { hasText: 'vad.speechEnd → session' }).count()).toBeGreaterThan(0);
    expect(await log.locator('div.transition', { hasText: 'session: session.active.turn.listening → session.active.turn.transcribing  (eot.decided)' }).count()).toBe(1);
    expect(await log.locator('div.provider', { hasText: 'llm started by reply' }).count()).toBe(1);
    expect(await log.locator('div.provider', { hasText: 'tts started by reply' }).count()).toBeGreaterThan(0);
    await expect.poll(() => page.locator('#waterfall svg rect').count(), { timeout: 5_000 }).toBeGreaterThanOrEqual(4);
    expect(await page.locator('#waterfall svg').innerHTML()).toMatch(/turn 1 \(voice\): first audio \d+ ms after the user stopped/);
    await expect.poll(() => row.locator('td.turns').innerText(), { timeout: 3_000 }).toBe('1');
    await screenshot(page, 'inspect-3-turn-done.png');

    // The page never shows the session's resume token.
    expect(await page.content()).not.toContain(ready['resumeToken'] as string);
  });
});
