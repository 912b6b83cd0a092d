import { afterAll, describe, expect, it } from 'vitest';
import { assign, createActor, setup, type AnyEventObject } from 'xstate';
import { createVadActor, type VadActorInput } from '../../src/vad/actor.js';
import { SharedVad } from '../../src/vad/shared-vad.js';
import { VadStream } from '../../src/vad/vad-stream.js';
import { ConfigError } from '../../src/errors.js';
import { checkEventGrammar, loadFixture } from './helpers.js';

const vad = new SharedVad();
afterAll(() => vad.close());

/** A fake inbound audio source with the subscribe() shape the session provides. */
function audioSource() {
  const listeners = new Set<(frame: Float32Array) => void>();
  return {
    listeners,
    subscribe(listener: (frame: Float32Array) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    send(frame: Float32Array) {
      for (const listener of listeners) listener(frame);
    },
  };
}

function parentWith(logic: ReturnType<typeof createVadActor>, input?: VadActorInput) {
  return setup({
    types: { context: {} as { events: AnyEventObject[] } },
    actors: { vad: logic },
  }).createMachine({
    context: { events: [] },
    invoke: { src: 'vad', id: 'vad', input },
    on: { '*': { actions: assign({ events: ({ context, event }) => [...context.events, event] }) } },
  });
}

async function until(predicate: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

type Actor = { getSnapshot(): { context: { events: AnyEventObject[] } } };
const events = (actor: Actor) => actor.getSnapshot().context.events;
const ended = (actor: Actor) => events(actor).some((e) => e.type === 'vad.speechEnd');
/** The turn-level events (what the session used to get): speechStart / speechEnd, plus errors. */
const turnTypes = (actor: Actor) =>
  events(actor)
    .map((e) => e.type)
    .filter((t) => t === 'vad.speechStart' || t === 'vad.speechEnd' || t === 'vad.error');

/** Streams padded-hello in 20 ms frames, then 1 s of silence, and waits for its speechEnd. */
async function sendHello(source: ReturnType<typeof audioSource>, actor: Actor): Promise<void> {
  const samples = loadFixture('padded-hello.16k.wav').samples;
  for (let i = 0; i < samples.length; i += 320) source.send(samples.subarray(i, i + 320));
  source.send(new Float32Array(16000));
  await until(() => ended(actor));
}

describe('vad actor (createVadActor)', () => {
  it('sends vad.speechStart then vad.speechEnd with the utterance audio for padded-hello in 20 ms frames', async () => {
    const source = audioSource();
    const actor = createActor(parentWith(createVadActor({ subscribe: source.subscribe, vad }))).start();
    const samples = loadFixture('padded-hello.16k.wav').samples;
    for (let i = 0; i < samples.length; i += 320) source.send(samples.subarray(i, i + 320));
    source.send(new Float32Array(16000)); // the caller keeps sending silence
    await until(() => ended(actor));
    await new Promise((resolve) => setTimeout(resolve, 50)); // nothing may follow the end
    const all = actor.getSnapshot().context.events;
    checkEventGrammar(all as Array<{ type: string }>);
    expect(all[0]).toEqual({ type: 'vad.onset', atMs: 544 });
    const [start, end, ...rest] = all.filter((e) => e.type === 'vad.speechStart' || e.type === 'vad.speechEnd');
    expect(rest).toEqual([]);
    expect(all.at(-1)).toBe(end);
    expect(start).toEqual({ type: 'vad.speechStart', atMs: 544, voicedMs: 64 });
    expect(end!['type']).toBe('vad.speechEnd');
    expect(end!['voicedMs']).toBeGreaterThan(1000);
    expect(end!['voicedMs']).toBeLessThanOrEqual(end!['durationMs'] as number);
    // no vad.voiced without marks
    expect(all.filter((e) => e.type === 'vad.voiced')).toEqual([]);
    expect(Math.abs((end!['atMs'] as number) - 2410)).toBeLessThanOrEqual(100);
    expect(end!['durationMs']).toBe((end!['atMs'] as number) - 544);
    expect(end!['audio'].sampleRate).toBe(16000);
    expect(end!['audio'].samples).toBeInstanceOf(Float32Array);
    expect(end!['audio'].samples.length).toBe((((end!['atMs'] as number) - 544 + 320) * 16000) / 1000);
    actor.stop();
  });

  it('stopping the actor unsubscribes and releases the stream', async () => {
    const source = audioSource();
    const before = vad.stats.streams;
    const actor = createActor(parentWith(createVadActor({ subscribe: source.subscribe, vad }))).start();
    expect(source.listeners.size).toBe(1);
    expect(vad.stats.streams).toBe(before + 1);
    source.send(loadFixture('hello.16k.wav').samples.subarray(0, 8000));
    actor.stop();
    expect(source.listeners.size).toBe(0);
    expect(vad.stats.streams).toBe(before);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(actor.getSnapshot().context.events).toEqual([]);
  });

  it('NaN and out-of-range samples are converted (NaN → 0, clamped), not fatal', async () => {
    const source = audioSource();
    const actor = createActor(parentWith(createVadActor({ subscribe: source.subscribe, vad }))).start();
    const samples = loadFixture('padded-hello.16k.wav').samples.slice();
    for (let i = 0; i < 4000; i += 7) samples[i] = Number.NaN; // inside the leading silence
    samples[100] = Number.POSITIVE_INFINITY;
    for (let i = 0; i < samples.length; i += 320) source.send(samples.subarray(i, i + 320));
    source.send(new Float32Array(16000));
    await until(() => ended(actor));
    checkEventGrammar(events(actor));
    expect(turnTypes(actor)).toEqual(['vad.speechStart', 'vad.speechEnd']);
    actor.stop();
  });

  it('a frame that is not Float32Array becomes vad.error (and onError) while the stream keeps working', async () => {
    const source = audioSource();
    const errors: unknown[] = [];
    const actor = createActor(
      parentWith(createVadActor({ subscribe: source.subscribe, vad, onError: (error) => errors.push(error) })),
    ).start();
    source.send(new Int16Array(320) as unknown as Float32Array);
    const samples = loadFixture('hello.16k.wav').samples;
    for (let i = 0; i < samples.length; i += 320) source.send(samples.subarray(i, i + 320));
    source.send(new Float32Array(16000));
    await until(() => ended(actor));
    expect(events(actor)[0]).toMatchObject({ type: 'vad.error', error: { name: 'VadError', code: 'vad_inference_failed' } });
    checkEventGrammar(events(actor));
    expect(turnTypes(actor)).toEqual(['vad.error', 'vad.speechStart', 'vad.speechEnd']);
    expect(errors).toHaveLength(1);
    actor.stop();
  });

  it('an inference failure is sent back as vad.error and the next windows still run', async () => {
    let calls = 0;
    const real = await import('../../src/vad/model.js').then((m) => m.loadSileroModel());
    const flaky = new SharedVad({
      model: {
        run: (input, state, n) => (++calls === 3 ? Promise.reject(new Error('boom')) : real.run(input, state, n)),
        close: () => real.close(),
      },
    });
    const source = audioSource();
    const actor = createActor(parentWith(createVadActor({ subscribe: source.subscribe, vad: flaky }))).start();
    const samples = loadFixture('padded-hello.16k.wav').samples;
    for (let i = 0; i < samples.length; i += 320) source.send(samples.subarray(i, i + 320));
    source.send(new Float32Array(16000));
    await until(() => ended(actor));
    expect(events(actor)[0]).toMatchObject({ type: 'vad.error', error: { code: 'vad_inference_failed' } });
    checkEventGrammar(events(actor));
    expect(turnTypes(actor)).toEqual(['vad.error', 'vad.speechStart', 'vad.speechEnd']);
    actor.stop();
    await flaky.close();
  });

  it('voicedMarksMs from the options give vad.voiced once the utterance has that much voice', async () => {
    const source = audioSource();
    const actor = createActor(parentWith(createVadActor({ subscribe: source.subscribe, vad, voicedMarksMs: [600] }))).start();
    await sendHello(source, actor);
    const voiced = events(actor).filter((e) => e.type === 'vad.voiced');
    expect(voiced).toHaveLength(1);
    expect(voiced[0]).toMatchObject({ voicedMs: 608 });
    checkEventGrammar(events(actor));
    actor.stop();
  });

  it('the marks of the XState input win over the options (input without marks falls back to them)', async () => {
    for (const [input, expected] of [
      [{ voicedMarksMs: [300, 900] }, [320, 928]],
      [{ voicedMarksMs: [] }, []],
      [{}, [1024]],
      [undefined, [1024]],
    ] as const) {
      const source = audioSource();
      const logic = createVadActor({ subscribe: source.subscribe, vad, voicedMarksMs: [1000] });
      const actor = createActor(parentWith(logic, input)).start();
      await sendHello(source, actor);
      const voiced = events(actor).filter((e) => e.type === 'vad.voiced').map((e) => e['voicedMs'] as number);
      expect(voiced, JSON.stringify(input)).toEqual(expected);
      actor.stop();
    }
  });

  it('a bad mark is a ConfigError before any model stream is opened', () => {
    const before = vad.stats.streams;
    expect(() => new VadStream({ vad, onEvent: () => {}, voicedMarksMs: [Number.NaN] })).toThrow(ConfigError);
    expect(vad.stats.streams).toBe(before);
  });
});
