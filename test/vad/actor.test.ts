import { afterAll, describe, expect, it } from 'vitest';
import { assign, createActor, setup, type AnyEventObject } from 'xstate';
import { createVadActor } from '../../src/vad/actor.js';
import { SharedVad } from '../../src/vad/shared-vad.js';
import { loadFixture } from './helpers.js';

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

function parentWith(logic: ReturnType<typeof createVadActor>) {
  return setup({
    types: { context: {} as { events: AnyEventObject[] } },
    actors: { vad: logic },
  }).createMachine({
    context: { events: [] },
    invoke: { src: 'vad', id: 'vad' },
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

describe('vad actor (createVadActor)', () => {
  it('sends vad.speechStart then vad.speechEnd with the utterance audio for padded-hello in 20 ms frames', async () => {
    const source = audioSource();
    const actor = createActor(parentWith(createVadActor({ subscribe: source.subscribe, vad }))).start();
    const samples = loadFixture('padded-hello.16k.wav').samples;
    for (let i = 0; i < samples.length; i += 320) source.send(samples.subarray(i, i + 320));
    source.send(new Float32Array(16000)); // the caller keeps sending silence
    await until(() => actor.getSnapshot().context.events.length >= 2);
    const [start, end, ...rest] = actor.getSnapshot().context.events;
    expect(rest).toEqual([]);
    expect(start).toEqual({ type: 'vad.speechStart', atMs: 544 });
    expect(end!['type']).toBe('vad.speechEnd');
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
    await until(() => actor.getSnapshot().context.events.length >= 2);
    const types = actor.getSnapshot().context.events.map((e) => e.type);
    expect(types).toEqual(['vad.speechStart', 'vad.speechEnd']);
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
    await until(() => actor.getSnapshot().context.events.length >= 3);
    const events = actor.getSnapshot().context.events;
    expect(events[0]).toMatchObject({ type: 'vad.error', error: { name: 'VadError', code: 'vad_inference_failed' } });
    expect(events.slice(1).map((e) => e.type)).toEqual(['vad.speechStart', 'vad.speechEnd']);
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
    await until(() => actor.getSnapshot().context.events.length >= 3);
    const events = actor.getSnapshot().context.events;
    expect(events[0]).toMatchObject({ type: 'vad.error', error: { code: 'vad_inference_failed' } });
    expect(events.slice(1).map((e) => e.type)).toEqual(['vad.speechStart', 'vad.speechEnd']);
    actor.stop();
    await flaky.close();
  });
});
