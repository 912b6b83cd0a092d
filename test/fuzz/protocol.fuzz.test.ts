/**
 * Protocol fuzzing against a live VoiceServer on loopback (real VAD, fake providers): random and
 * mutated JSON, random binary frames, random message orders, resume races within and across
 * sockets, sockets closed mid-handshake, frames beyond every size limit. The properties:
 *
 * - the server never throws: no uncaught exception and no unhandled rejection in this process
 *   (the server runs in it), and `/health` answers after every run;
 * - every message the server sends passes its own schema; every `error.code` is in ERROR_CODES;
 * - the server's verdict on each text message is the codec's (`parseClientMessage`): a message the
 *   codec refuses gets an `error` with the codec's code, one it accepts never gets a codec error;
 *   binary frames get the documented codes (protocol_not_ready, audio_invalid_format,
 *   protocol_message_too_large, audio_rate_exceeded), or the socket's own limits (1007, 1009);
 * - a fatal error closes the socket with its documented close code, and a 4xxx close always
 *   follows a fatal error;
 * - resume races: of several sockets resuming one session at once, exactly one wins;
 * - a healthy session, a real websocket-audio client speaking test/fixtures/hello.16k.wav in real
 *   time through the real VAD, completes every one of its turns with its whole reply audio,
 *   untouched by all of the above.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { closeCodeFor, ERROR_CODES } from '../../src/protocol/error-codes.js';
import { parseClientMessage } from '../../src/protocol/codec.js';
import type { ServerMessage } from '../../src/protocol/messages.js';
import { VoiceServer } from '../../src/server/index.js';
import { fixture } from '../server/helpers.js';
import { delay, LiveClient, Probe, rms, type Sent, type StepAnswer } from './clients.js';

const REPLY = 'Hello! How can I help you today?';
const MS_PER_WORD = 60;
const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_PAYLOAD = MAX_MESSAGE_BYTES * 4;
const MAX_FRAME_MS = 500;
const RUNS = { json: 120, binary: 60, orders: 80, races: 20 } as const;
const CODEC_CODES = new Set(['protocol_invalid_json', 'protocol_invalid_message', 'protocol_message_too_large', 'protocol_unsupported_version']);
const CODES = new Set<string>(ERROR_CODES);

let server: VoiceServer;
let url: string;
let http: string;
const crashes: unknown[] = [];
const onCrash = (error: unknown): void => {
  crashes.push(error);
};

// ---- the healthy session, speaking in real time alongside the whole fuzz run
let healthy: LiveClient;
let healthyId = '';
let healthyTurns = 0;
let stopHealthy = false;
let healthyLoop: Promise<void> = Promise.resolve();
const speech = fixture('hello.16k.wav').pcm;

async function healthyConversation(): Promise<void> {
  while (!stopHealthy || healthyTurns < 3) {
    const before = healthy.replies().length;
    await healthy.say(speech);
    await healthy.next('reply.done', () => healthy.replies().length > before, 30_000);
    healthyTurns++;
    await delay(300);
  }
}

// ---- fuzz sessions that may be resumed (ids and tokens from their session.ready)
interface Known {
  readonly sessionId: string;
  readonly resumeToken: string;
  readonly audio: { readonly transport: 'websocket' | 'webrtc'; readonly sampleRate: number };
}
const known: Known[] = [];
const counts = { sockets: 0, steps: 0, errors: 0, fatal: 0 };

beforeAll(async () => {
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  server = new VoiceServer({
    port: 0,
    providers: {
      stt: new FakeStt({ recognize: () => 'hello there' }),
      llm: new FakeLlm({ respond: () => [REPLY] }),
      tts: new FakeTts({ msPerWord: MS_PER_WORD }),
    },
    session: { ttlMs: 1000, limits: { maxSessions: 100_000, maxPerIp: 100_000 } },
    webrtc: { workers: 0 },
    webrtcHostAddresses: ['127.0.0.1'],
    inspect: false,
  });
  const address = await server.start();
  url = address.url;
  http = `http://127.0.0.1:${address.port}`;
  healthy = new LiveClient(url);
  healthyId = String((await healthy.connect())['sessionId']);
  healthyLoop = healthyConversation();
  healthyLoop.catch(() => undefined); // awaited (and its failure reported) by the last test
}, 30_000);

afterAll(async () => {
  stopHealthy = true;
  await healthy?.close();
  await server?.stop();
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
});

// ------------------------------------------------------------------------------------- arbitraries

const anyString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom('', '__proto__', 'constructor', 'prototype', '\u0000', '\ud800', '😀'.repeat(8), 'null'),
);
const helloAudio = fc.record({
  transport: fc.constantFrom('websocket', 'websocket', 'websocket', 'webrtc'),
  format: fc.constant('pcm16'),
  sampleRate: fc.constantFrom(16_000, 24_000, 48_000),
});
const hello = fc.record(
  {
    type: fc.constant('session.hello'),
    protocol: fc.constantFrom(1, 1, 1, 1, 1, 2, 0),
    token: anyString,
    audio: helloAudio,
    options: fc.oneof(
      fc.record({ language: anyString, voice: anyString, metadata: fc.dictionary(anyString, fc.oneof(anyString, fc.integer(), fc.boolean()), { maxKeys: 3 }) }, { requiredKeys: [] }),
      fc.record({ playbook: anyString }),
    ),
  },
  { requiredKeys: ['type', 'protocol', 'audio'] },
);
const resume = fc.record({ type: fc.constant('session.resume'), protocol: fc.constantFrom(1, 1, 2), sessionId: anyString, resumeToken: anyString });
const valid = fc.oneof(
  { weight: 3, arbitrary: hello },
  { weight: 1, arbitrary: resume },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('user.text'), text: fc.oneof(anyString, fc.string({ minLength: 1, maxLength: 300 })) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('ping'), t: fc.oneof(fc.integer(), fc.double()) }) },
  { weight: 1, arbitrary: fc.constant({ type: 'session.interrupt' }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('playback.progress'), replyId: anyString, playedMs: fc.double() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('session.close'), reason: anyString }, { requiredKeys: ['type'] }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('webrtc.offer'), sdp: anyString, trickle: fc.boolean() }, { requiredKeys: ['type', 'sdp'] }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('webrtc.ice'), candidate: fc.option(anyString), sdpMid: fc.option(anyString), sdpMLineIndex: fc.option(fc.integer()) }) },
  { weight: 1, arbitrary: fc.record({ type: anyString }) },
);

function without(message: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...message };
  delete copy[key];
  return copy;
}

/** A valid message, or one with a field replaced by any JSON, removed, or an extra (prototype-polluting) key added. */
const mutated = valid.chain((message: Record<string, unknown>) => {
  const keys = Object.keys(message);
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(message) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...keys), fc.jsonValue({ maxDepth: 3 })).map(([key, v]) => ({ ...message, [key]: v })) },
    { weight: 1, arbitrary: fc.constantFrom(...keys).map((key) => without(message, key)) },
    { weight: 1, arbitrary: fc.tuple(anyString, fc.jsonValue({ maxDepth: 2 })).map(([key, v]) => ({ ...message, [key]: v })) },
  );
});

const text: fc.Arbitrary<Sent> = fc.oneof(
  { weight: 8, arbitrary: mutated.map((m) => JSON.stringify(m)) },
  { weight: 2, arbitrary: mutated.map((m) => JSON.stringify(m).replace(/^\{/, '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.constantFrom('[]', 'null', '1', '"x"', '{}', '{"type":1}', '{"type":"ping"', '', '{"type":"ping","t":1}'.repeat(2)) },
  // Around the 64 KiB limit, counted in UTF-8 bytes (é is two).
  { weight: 1, arbitrary: fc.integer({ min: MAX_MESSAGE_BYTES - 40, max: 120_000 }).map((n) => JSON.stringify({ type: 'user.text', text: 'é'.repeat(Math.floor(n / 2)) })) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 30_000 }).map((d) => `{"type":"ping","t":1,"deep":${'['.repeat(d)}${']'.repeat(d)}}`) },
  // Not UTF-8 at all: 0xFF never occurs in it.
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => ({ text: Uint8Array.of(0xff, ...bytes) })) },
);

const binary: fc.Arbitrary<Sent> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 1_500 }).map((bytes) => ({ binary: bytes })) },
  { weight: 1, arbitrary: fc.constant({ binary: new Uint8Array(0) }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }).map((k) => ({ binary: new Uint8Array(48_000 + 2 + k * 1_000) })) },
  { weight: 1, arbitrary: fc.constant({ binary: new Uint8Array(MAX_PAYLOAD + 10) }) },
);

type OrderStep = { kind: 'send'; item: Sent } | { kind: 'resumeKnown'; pick: number; token: 'right' | 'wrong' } | { kind: 'resumeHealthy' } | { kind: 'wait'; ms: number } | { kind: 'drop' } | { kind: 'burst'; items: Sent[] };

const wsHello = (rate: 16_000 | 24_000 | 48_000 = 16_000): string => JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: rate } });
const anyResume = resume.map((m) => JSON.stringify({ ...m, protocol: 1 }));

const orderStep: fc.Arbitrary<OrderStep> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<16_000 | 24_000 | 48_000>(16_000, 24_000, 48_000).map((rate): OrderStep => ({ kind: 'send', item: wsHello(rate) })) },
  { weight: 3, arbitrary: text.map((item): OrderStep => ({ kind: 'send', item })) },
  { weight: 3, arbitrary: binary.map((item): OrderStep => ({ kind: 'send', item })) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(), fc.constantFrom<'right' | 'wrong'>('right', 'wrong')).map(([pick, token]): OrderStep => ({ kind: 'resumeKnown', pick, token })) },
  { weight: 1, arbitrary: fc.constant<OrderStep>({ kind: 'resumeHealthy' }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 40 }).map((ms): OrderStep => ({ kind: 'wait', ms })) },
  { weight: 1, arbitrary: fc.constant<OrderStep>({ kind: 'drop' }) },
  // Sent back to back, no ping between: hello/resume races on one socket.
  { weight: 2, arbitrary: fc.array(fc.oneof(fc.constant(wsHello()), anyResume, text, binary), { minLength: 2, maxLength: 4 }).map((items): OrderStep => ({ kind: 'burst', items })) },
);

// ------------------------------------------------------------------------------------- checks

interface Model {
  /** The session this socket has, as far as its answers told. */
  session: { transport: 'websocket' | 'webrtc'; sampleRate: number } | undefined;
}

function errorsOf(messages: readonly ServerMessage[]): Extract<ServerMessage, { type: 'error' }>[] {
  return messages.filter((m): m is Extract<ServerMessage, { type: 'error' }> => m.type === 'error');
}

/** What every answer must satisfy, whatever was sent. */
function checkAnswer(probe: Probe, answer: StepAnswer): void {
  expect(probe.invalid).toEqual([]);
  const errors = errorsOf(answer.messages);
  counts.errors += errors.length;
  for (const error of errors) expect(CODES.has(error.code), error.code).toBe(true);
  const fatal = errors.find((e) => e.fatal);
  if (fatal !== undefined) {
    counts.fatal++;
    expect(answer.closed, `fatal ${fatal.code} without a close`).toBe(true);
    expect(probe.closeCode).toBe(closeCodeFor(fatal.code));
  }
  if (answer.closed && fatal === undefined && probe.closeCode !== undefined) {
    // Closes no error explains: the session ended normally (session.close), or ws's own limits.
    expect([1000, 1007, 1009], `close ${probe.closeCode}`).toContain(probe.closeCode);
  }
}

function learn(model: Model, answer: StepAnswer): void {
  for (const m of answer.messages) {
    if (m.type === 'session.ready') {
      model.session = { transport: m.audio.transport, sampleRate: m.audio.sampleRate };
      known.push({ sessionId: m.sessionId, resumeToken: m.resumeToken, audio: model.session });
    }
    if (m.type === 'session.resumed') {
      const audio = known.find((k) => k.sessionId === m.sessionId)?.audio;
      expect(audio, 'resumed a session this test never created').toBeDefined();
      model.session = audio;
    }
  }
}

/** The server's answer to one text or binary message, against the codec and the documented codes. */
function checkVerdict(item: Sent, model: Model, answer: StepAnswer, closeCode: number | undefined): void {
  const codes = errorsOf(answer.messages).map((e) => e.code);
  const limited = codes.includes('session_limit'); // the message-rate limit may cut any step short
  if (typeof item === 'string') {
    const local = parseClientMessage(item, MAX_MESSAGE_BYTES);
    if (!local.ok) {
      if (!limited) expect(codes).toContain(local.error.code);
      return;
    }
    if (local.message.type !== 'webrtc.offer' && local.message.type !== 'webrtc.ice') {
      // The server's SDP check answers protocol_invalid_message too; everything else the codec took, the server takes.
      for (const code of codes) expect(CODEC_CODES.has(code), `${code} for a message the codec accepts: ${item.slice(0, 120)}`).toBe(false);
    }
    const needsSession = !['ping', 'session.hello', 'session.resume'].includes(local.message.type);
    if (needsSession && model.session === undefined && !limited) expect(codes).toContain('protocol_not_ready');
    return;
  }
  if ('text' in item) {
    expect(answer.closed).toBe(true);
    expect(closeCode).toBe(1007); // ws refuses text that is not UTF-8
    return;
  }
  const bytes = item.binary.byteLength;
  if (bytes > MAX_PAYLOAD) {
    expect(answer.closed).toBe(true);
    expect(closeCode).toBe(1009);
    return;
  }
  const session = model.session;
  if (session === undefined || session.transport === 'webrtc') {
    if (bytes > 0) expect(codes).toContain('protocol_not_ready');
    return;
  }
  const maxFrameBytes = Math.floor((MAX_FRAME_MS * session.sampleRate) / 1000) * 2;
  const expected = bytes === 0 ? undefined : bytes > maxFrameBytes ? 'protocol_message_too_large' : bytes % 2 === 1 ? 'audio_invalid_format' : undefined;
  if (expected !== undefined) expect(codes).toContain(expected);
  for (const code of codes) expect(['protocol_message_too_large', 'audio_invalid_format', 'audio_rate_exceeded', 'session_limit']).toContain(code);
}

async function healthCheck(): Promise<void> {
  const response = await fetch(`${http}/health`);
  expect(response.status).toBe(200);
  expect(crashes).toEqual([]);
}

/** One socket running `steps`; every answer is checked. */
async function runSocket(steps: readonly OrderStep[]): Promise<void> {
  const probe = new Probe(url);
  counts.sockets++;
  const model: Model = { session: undefined };
  try {
    if (!(await probe.opened())) return;
    for (const step of steps) {
      if (!probe.open) break;
      counts.steps++;
      if (step.kind === 'wait') {
        await delay(step.ms);
        continue;
      }
      if (step.kind === 'drop') {
        await probe.end(true);
        break;
      }
      if (step.kind === 'burst') {
        for (const item of step.items) probe.send(item);
        const answer = await probe.step(undefined);
        checkAnswer(probe, answer);
        learn(model, answer);
        const ready = answer.messages.filter((m) => m.type === 'session.ready' || m.type === 'session.resumed');
        expect(ready.length).toBeLessThanOrEqual(1); // one socket, one session, however the race goes
        continue;
      }
      let item: Sent;
      if (step.kind === 'send') item = step.item;
      else if (step.kind === 'resumeHealthy') item = JSON.stringify({ type: 'session.resume', protocol: 1, sessionId: healthyId, resumeToken: 'not-the-token' });
      else {
        const target = known.length === 0 ? undefined : known[step.pick % known.length];
        item = JSON.stringify({ type: 'session.resume', protocol: 1, sessionId: target?.sessionId ?? 'none', resumeToken: step.token === 'right' ? (target?.resumeToken ?? 'x') : 'wrong' });
      }
      const hadSession = model.session !== undefined;
      const answer = await probe.step(item);
      checkAnswer(probe, answer);
      checkVerdict(item, model, answer, probe.closeCode);
      const codes = errorsOf(answer.messages).map((e) => e.code);
      if (step.kind === 'resumeHealthy') {
        // Someone else's live session: refused (or this socket already has one), never taken over.
        expect(codes.some((c) => c === 'session_resume_refused' || c === 'session_invalid_state' || c === 'session_limit')).toBe(true);
      }
      const local = typeof item === 'string' ? parseClientMessage(item, MAX_MESSAGE_BYTES) : undefined;
      const opening = local?.ok === true && (local.message.type === 'session.hello' || local.message.type === 'session.resume');
      if (hadSession && opening && !codes.includes('session_limit')) {
        expect(codes).toContain('session_invalid_state'); // hello (or resume) twice on one connection
      }
      learn(model, answer);
    }
  } finally {
    await probe.end(Math.random() < 0.5);
  }
}

// ------------------------------------------------------------------------------------- properties

describe('protocol fuzzing against a live server', () => {
  it(`random and mutated JSON (${RUNS.json} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(text, { minLength: 1, maxLength: 8 }), async (withHello, items) => {
        const steps: OrderStep[] = [...(withHello ? [{ kind: 'send' as const, item: wsHello() }] : []), ...items.map((item) => ({ kind: 'send' as const, item }))];
        await runSocket(steps);
        await healthCheck();
      }),
      { numRuns: RUNS.json },
    );
    console.log(`fuzz json: numRuns ${RUNS.json}; ${counts.sockets} sockets, ${counts.steps} steps, ${counts.errors} errors (${counts.fatal} fatal) so far`);
  });

  it(`random binary frames, before and after hello (${RUNS.binary} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<16_000 | 24_000 | 48_000 | undefined>(undefined, 16_000, 24_000, 48_000),
        fc.array(binary, { minLength: 1, maxLength: 8 }),
        async (rate, items) => {
          const steps: OrderStep[] = [...(rate === undefined ? [] : [{ kind: 'send' as const, item: wsHello(rate) }]), ...items.map((item) => ({ kind: 'send' as const, item }))];
          await runSocket(steps);
          await healthCheck();
        },
      ),
      { numRuns: RUNS.binary },
    );
    console.log(`fuzz binary: numRuns ${RUNS.binary}; ${counts.sockets} sockets, ${counts.steps} steps so far`);
  });

  it(`random message orders: audio before hello, hello twice, resumes of real and random sessions, drops (${RUNS.orders} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(orderStep, { minLength: 1, maxLength: 10 }), async (steps) => {
        await runSocket(steps);
        await healthCheck();
      }),
      { numRuns: RUNS.orders },
    );
    console.log(`fuzz orders: numRuns ${RUNS.orders}; ${counts.sockets} sockets, ${counts.steps} steps so far`);
  });

  it(`resume races across sockets and sockets closed mid-handshake (${RUNS.races} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 5 }), fc.boolean(), fc.integer({ min: 0, max: 3 }), async (racers, alsoHello, abandoned) => {
        // A session whose socket drops.
        const owner = new Probe(url);
        await owner.opened();
        const ready = (await owner.step(wsHello())).messages.find((m) => m.type === 'session.ready');
        expect(ready).toBeDefined();
        if (ready?.type !== 'session.ready') return;
        await owner.end(true);
        await delay(150); // the server hears the drop: the session is suspended (its TTL is 1 s)
        // Sockets that give up mid-handshake: before the upgrade completes, or right after a hello.
        const quitters = Array.from({ length: abandoned }, (_, i) => {
          const q = new Probe(url);
          if (i % 2 === 0) return q.end(true);
          return q.opened().then(() => {
            q.send(wsHello());
            return q.end(true);
          });
        });
        // Several sockets resume it at the same moment (one of them also says hello first).
        const probes = Array.from({ length: racers }, () => new Probe(url));
        await Promise.all(probes.map((p) => p.opened()));
        counts.sockets += racers + abandoned + 1;
        const resumeText = JSON.stringify({ type: 'session.resume', protocol: 1, sessionId: ready.sessionId, resumeToken: ready.resumeToken });
        probes.forEach((p, i) => {
          if (alsoHello && i === 0) p.send(wsHello());
          p.send(resumeText);
        });
        const answers = await Promise.all(probes.map((p) => p.step(undefined)));
        answers.forEach((answer, i) => checkAnswer(probes[i] as Probe, answer));
        const winners = answers.filter((a) => a.messages.some((m) => m.type === 'session.resumed'));
        expect(winners.length).toBeLessThanOrEqual(1);
        for (const answer of answers) {
          if (answer.messages.some((m) => m.type === 'session.resumed' || m.type === 'session.ready')) continue;
          expect(errorsOf(answer.messages).map((e) => e.code)).toContain('session_resume_refused');
        }
        // The hello socket, if any, got its own session and was refused the resume: one winner among the rest.
        expect(winners).toHaveLength(1);
        await Promise.all([...quitters, ...probes.map((p) => p.end(Math.random() < 0.5))]);
        await healthCheck();
      }),
      { numRuns: RUNS.races },
    );
    console.log(`fuzz races: numRuns ${RUNS.races}; ${counts.sockets} sockets in all`);
  });

  it('afterwards: no crash, no prototype pollution, every fuzz session ended, and the healthy session completed every turn with clean audio', async () => {
    stopHealthy = true;
    await healthyLoop;
    expect(crashes).toEqual([]);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // Suspended fuzz sessions expire (ttl 1 s); the healthy one is the only one left.
    const until = performance.now() + 10_000;
    while (server.sessions > 1 && performance.now() < until) await delay(50);
    expect(server.sessions).toBe(1);

    expect(healthy.closeCode).toBeUndefined();
    expect(healthy.messages.filter((m) => m['type'] === 'error')).toEqual([]);
    const replies = healthy.replies();
    expect(replies.length).toBe(healthyTurns);
    expect(healthyTurns).toBeGreaterThanOrEqual(3);
    const words = REPLY.split(/\s+/).length;
    const expectedFrames = (words * MS_PER_WORD) / 20;
    for (const reply of replies) {
      expect(reply).toMatchObject({ text: REPLY, interrupted: false, sampleRate: 16_000 });
      // Whole: every 20 ms frame of the reply arrived, none missing, none silent (the fake voice is a steady tone).
      expect(reply.frames.length).toBeGreaterThanOrEqual(expectedFrames - 1);
      expect(reply.frames.length).toBeLessThanOrEqual(expectedFrames + 1);
      for (const frame of reply.frames) expect(frame.length).toBe(320);
      for (const frame of reply.frames.slice(0, -1)) expect(rms(frame)).toBeGreaterThan(1000);
    }
    console.log(
      `fuzz summary: numRuns json ${RUNS.json}, binary ${RUNS.binary}, orders ${RUNS.orders}, races ${RUNS.races}; ${counts.sockets} sockets, ${counts.steps} steps, ${counts.errors} error messages (${counts.fatal} fatal); healthy session: ${healthyTurns} turns, every reply whole`,
    );
  }, 60_000);
});
