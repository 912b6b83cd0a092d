/**
 * Offline speech recognition: pocketsphinx through ffmpeg's asr filter, the shipped generic model
 * against the in-domain model generated from the offline phrases.
 *
 *   npx tsx bench/stt.ts
 *
 * Clips: the six 16 kHz speech fixtures (espeak-ng, texts and speech edges from
 * test/fixtures/README.md) and six in-domain sentences spoken by the Flite voices (four of them not in
 * the phrase list word for word: "verbatim" says which are). Each clip, followed by 1.5 s of a low noise
 * floor (-70 dBFS, as from a quiet microphone), is streamed in real time: 32 ms chunks, each handed over
 * when its last sample would have been recorded, paced by setTimeout.
 *
 * - WER: word error rate, Levenshtein distance over lower-cased words (punctuation dropped, digits
 *   as words) divided by the reference's word count; "all" sums edits and words over the clips.
 * - end → text: from the end of speech (the last sample above 0.5% of full scale; the fixtures'
 *   "speech to") to the arrival of the clip's last final result. "hint" runs call the stream's pause
 *   listener 192 ms after the end of speech, as the session does at `vad.speechPause`; "no hint" runs
 *   wait for the filter's own voice detector.
 * - pause → text: from the hint to the text of the segment it closed.
 * - audio end → done: from the end of the audio iterable (1.5 s after the clip) to the end of the results.
 *
 * "shipped" is the recognizer as it was before the in-domain model: the generic language model and
 * the shipped acoustic model's cepstral mean (`cmninit: 'model'`). "in-domain" is the default.
 * A second table (clips fed at once, WER only) separates what the language model and the cepstral
 * mean each contribute. Then language model generation time and cold versus warm processes.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWav } from '../src/audio/wav.js';
import { normalizeWords, writeLanguageModel } from '../src/providers/local/language-model.js';
import { OFFLINE_PHRASES } from '../src/providers/local/offline-phrases.js';
import { PocketsphinxStt, type PocketsphinxSttOptions } from '../src/providers/local/pocketsphinx-stt.js';
import type { FliteVoice } from '../src/providers/local/flite-tts.js';
import { closeSpeech, speech } from '../test/helpers/speech.js';
import { summarize, table } from './stats.js';

const RATE = 16_000;
const CHUNK = 512; // 32 ms
const PAD_MS = 1500;
const HINT_AFTER_MS = 192;
const VOICED = 0.005;

interface Clip {
  readonly name: string;
  readonly text: string;
  readonly samples: Float32Array;
  /** Seconds from the start of the clip to the end of speech. */
  readonly speechTo: number;
}

const FIXTURES: readonly { file: string; text: string; speechTo: number }[] = [
  { file: 'booking', text: 'Yes, I would like to book a table for two people tomorrow at seven.', speechTo: 3.92 },
  { file: 'digits', text: 'My account number is four five nine, two one, eight.', speechTo: 3.47 },
  { file: 'hello', text: 'Hello there, how are you today?', speechTo: 1.91 },
  { file: 'weather', text: 'What is the weather going to be like in London this weekend?', speechTo: 3.03 },
  { file: 'stop', text: 'Wait, stop. Actually, never mind.', speechTo: 3.0 },
  { file: 'booking-noisy', text: 'Yes, I would like to book a table for two people tomorrow at seven.', speechTo: 3.92 },
];

const SENTENCES: readonly [FliteVoice, string][] = [
  ['slt', 'I would like to book a table for four people on Friday.'],
  ['kal16', 'Can I reserve a table for six people on Saturday at eight?'],
  ['rms', 'What is the weather like in Paris tomorrow?'],
  ['awb', 'No thanks, that is all.'],
  ['slt', 'My account number is three seven one five.'],
  ['kal16', 'Is it going to rain in Berlin this weekend?'],
];

const CONFIGS: readonly { label: string; options: PocketsphinxSttOptions }[] = [
  { label: 'shipped', options: { languageModel: 'generic', cmninit: 'model' } },
  { label: 'in-domain', options: {} },
];

// ---------------------------------------------------------------------------------------------
// Word error rate

/** Word-level Levenshtein distance between a reference and a hypothesis, and the reference's length. */
function wordErrors(reference: string, hypothesis: string): { edits: number; words: number } {
  const ref = normalizeWords(reference);
  const hyp = normalizeWords(hypothesis);
  let previous = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const row = [i];
    for (let j = 1; j <= hyp.length; j++) {
      const substitution = (previous[j - 1] as number) + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      row.push(Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, substitution));
    }
    previous = row;
  }
  return { edits: previous[hyp.length] as number, words: ref.length };
}

const percent = (edits: number, words: number): string => `${((100 * edits) / Math.max(1, words)).toFixed(1)}%`;

// ---------------------------------------------------------------------------------------------
// Real-time streaming

interface LiveRun {
  readonly text: string;
  /** End of speech → last final result (ms). */
  readonly finalMs: number;
  /** Pause hint → the text it closed (ms), for hint runs. */
  readonly pauseMs: number | undefined;
  /** End of the audio iterable → end of the results (ms). */
  readonly doneMs: number;
}

const sleepUntil = (t: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, t - performance.now())));

/** A seeded noise floor of `ms`, RMS about -70 dBFS. */
function noiseFloor(ms: number, seed = 7): Float32Array {
  const out = new Float32Array(Math.round((ms * RATE) / 1000));
  let state = seed;
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * 0.00055;
  }
  return out;
}

async function streamLive(stt: PocketsphinxStt, clip: Clip, hint: boolean): Promise<LiveRun> {
  const samples = new Float32Array(clip.samples.length + Math.round((PAD_MS * RATE) / 1000));
  samples.set(clip.samples);
  samples.set(noiseFloor(PAD_MS), clip.samples.length);
  const start = performance.now() + 20;
  const speechEnd = start + clip.speechTo * 1000;
  let audioEnd = 0;
  async function* microphone(): AsyncGenerator<Float32Array> {
    for (let i = 0; i * CHUNK < samples.length; i++) {
      const chunk = samples.subarray(i * CHUNK, (i + 1) * CHUNK);
      await sleepUntil(start + ((i * CHUNK + chunk.length) / RATE) * 1000);
      yield chunk;
    }
    audioEnd = performance.now();
  }
  let pausedAt: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onPause = (listener: () => void): void => {
    if (!hint) return;
    timer = setTimeout(() => {
      pausedAt = performance.now();
      listener();
    }, speechEnd + HINT_AFTER_MS - performance.now());
  };
  const texts: string[] = [];
  let lastAt = Number.NaN;
  let pauseMs: number | undefined;
  for await (const result of stt.stream(microphone(), { signal: new AbortController().signal, onPause })) {
    const now = performance.now();
    texts.push(result.text);
    lastAt = now;
    if (pausedAt !== undefined && pauseMs === undefined) pauseMs = now - pausedAt;
  }
  clearTimeout(timer);
  return { text: texts.join(' '), finalMs: lastAt - speechEnd, pauseMs, doneMs: performance.now() - audioEnd };
}

// ---------------------------------------------------------------------------------------------

/** The end of speech: the last sample above 0.5% of full scale. */
function speechEnd(samples: Float32Array): number {
  let last = samples.length - 1;
  while (last > 0 && Math.abs(samples[last] as number) <= VOICED) last--;
  return (last + 1) / RATE;
}

async function loadClips(): Promise<{ clips: Clip[]; short: Clip }> {
  const clips: Clip[] = FIXTURES.map(({ file, text, speechTo }) => {
    const wav = readWav(readFileSync(new URL(`../test/fixtures/${file}.16k.wav`, import.meta.url)));
    if (wav.sampleRate !== RATE) throw new Error(`${file}: expected 16 kHz`);
    return { name: file, text, samples: wav.samples, speechTo };
  });
  for (const [voice, text] of SENTENCES) {
    const samples = await speech(text, voice);
    clips.push({ name: `flite ${voice}: ${text.split(' ').slice(0, 4).join(' ')}…`, text, samples, speechTo: speechEnd(samples) });
  }
  const stop = await speech('Stop.', 'slt');
  await closeSpeech();
  return { clips, short: { name: 'flite slt: Stop.', text: 'Stop.', samples: stop, speechTo: speechEnd(stop) } };
}

const phraseSet = new Set(OFFLINE_PHRASES.map((p) => normalizeWords(p).join(' ')));
const verbatim = (text: string): string => (phraseSet.has(normalizeWords(text).join(' ')) ? 'yes' : 'no');

async function live(clips: readonly Clip[]): Promise<void> {
  const runs = new Map<string, LiveRun[]>();
  for (const config of CONFIGS) {
    const stt = new PocketsphinxStt(config.options);
    await stt.prepare();
    for (const hint of [false, true]) {
      const key = `${config.label} ${hint ? 'hint' : 'no hint'}`;
      const list: LiveRun[] = [];
      for (const clip of clips) list.push(await streamLive(stt, clip, hint));
      runs.set(key, list);
    }
    await stt.close();
  }
  const get = (key: string, i: number): LiveRun => (runs.get(key) as LiveRun[])[i] as LiveRun;

  console.log('\nReal-time streaming, per clip (WER from the hint runs; end → text in ms)\n');
  const rows = clips.map((clip, i) => [
    clip.name,
    verbatim(clip.text),
    ...CONFIGS.map((c) => {
      const e = wordErrors(clip.text, get(`${c.label} hint`, i).text);
      return percent(e.edits, e.words);
    }),
    ...[...runs.keys()].map((key) => Math.round(get(key, i).finalMs)),
  ]);
  const totals = CONFIGS.map((c) => {
    const errors = clips.map((clip, i) => wordErrors(clip.text, get(`${c.label} hint`, i).text));
    return percent(errors.reduce((n, e) => n + e.edits, 0), errors.reduce((n, e) => n + e.words, 0));
  });
  rows.push(['all', '', ...totals, ...[...runs.keys()].map(() => '')]);
  console.log(table(['clip', 'verbatim', ...CONFIGS.map((c) => `WER ${c.label}`), ...[...runs.keys()]], rows));

  console.log('\nWhat each recognized (hint runs)\n');
  console.log(
    table(
      ['clip', ...CONFIGS.map((c) => c.label)],
      clips.map((clip, i) => [clip.name, ...CONFIGS.map((c) => `"${get(`${c.label} hint`, i).text}"`)]),
    ),
  );

  console.log('\nLatency over all clips (ms)\n');
  const stat = (values: readonly number[]) => summarize(values);
  const summaryRows = [...runs.entries()].flatMap(([key, list]) => {
    const final = stat(list.map((r) => r.finalMs));
    const pauses = list.flatMap((r) => (r.pauseMs === undefined ? [] : [r.pauseMs]));
    const pause = pauses.length ? stat(pauses) : undefined;
    const done = stat(list.map((r) => r.doneMs));
    return [[key, final.p50, final.max, pause?.p50 ?? '—', pause?.max ?? '—', done.p50, done.max]];
  });
  console.log(table(['run', 'end → text p50', 'max', 'pause → text p50', 'max', 'audio end → done p50', 'max'], summaryRows));
}

/** WER with the clips fed at once: the language model and the cepstral mean, separately. */
async function ablation(clips: readonly Clip[]): Promise<void> {
  const variants: readonly [string, PocketsphinxSttOptions][] = [
    ['generic LM, shipped cmninit', { languageModel: 'generic', cmninit: 'model' }],
    ['generic LM, default cmninit', { languageModel: 'generic' }],
    ['in-domain LM, shipped cmninit', { cmninit: 'model' }],
    ['in-domain LM, default cmninit', {}],
  ];
  const rows: (string | number)[][] = [];
  for (const [label, options] of variants) {
    const stt = new PocketsphinxStt(options);
    let edits = 0;
    let words = 0;
    let wrong = 0;
    for (const clip of clips) {
      const { text } = await stt.transcribe({ samples: clip.samples, sampleRate: RATE }, { signal: new AbortController().signal });
      const e = wordErrors(clip.text, text);
      edits += e.edits;
      words += e.words;
      if (e.edits > 0) wrong++;
    }
    await stt.close();
    rows.push([label, percent(edits, words), `${wrong}/${clips.length}`]);
  }
  console.log('\nWER by model, clips fed at once\n');
  console.log(table(['model', 'WER', 'clips with an error'], rows));
}

async function generation(): Promise<void> {
  const rows: (string | number)[][] = [];
  const phrases = OFFLINE_PHRASES;
  const fresh: number[] = [];
  for (let i = 0; i < 10; i++) {
    const directory = await mkdtemp(join(tmpdir(), 'voxstate-bench-lm-'));
    const t = performance.now();
    const files = await writeLanguageModel(phrases, { directory });
    fresh.push(performance.now() - t);
    if (i === 0) rows.push(['phrases / words / missing', `${phrases.length} / ${files.words.length} / ${files.missing.length}`, '', '']);
    await rm(directory, { recursive: true, force: true });
  }
  const reused: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await writeLanguageModel(phrases);
    reused.push(performance.now() - t);
  }
  const first = fresh[0] as number;
  const f = summarize(fresh.slice(1));
  const r = summarize(reused);
  rows.push(['first call (reads cmudict, 3.2 MB)', first, '', '']);
  rows.push(['written again (new directory)', f.p50, f.max, '']);
  rows.push(['reused (files from an earlier start)', r.p50, r.max, '']);
  console.log('\nIn-domain language model generation (ms)\n');
  console.log(table(['', 'p50', 'max', ''], rows).replace(/\s+$/gm, ''));
}

/**
 * Cold process vs a warm spare: the hello fixture fed at once (transcribe: the model load is on the
 * critical path), and a one-word clip streamed live with the hint (the load overlaps the speech).
 */
async function warmth(clips: readonly Clip[], short: Clip): Promise<void> {
  const hello = clips.find((c) => c.name === 'hello') as Clip;
  const rows: (string | number)[][] = [];
  for (const config of CONFIGS) {
    for (const warm of [false, true]) {
      const stt = new PocketsphinxStt({ ...config.options, warm });
      await stt.transcribe({ samples: hello.samples, sampleRate: RATE }, { signal: new AbortController().signal });
      const batch: number[] = [];
      const streamed: number[] = [];
      for (let i = 0; i < 7; i++) {
        await new Promise((resolve) => setTimeout(resolve, 600));
        const t = performance.now();
        await stt.transcribe({ samples: hello.samples, sampleRate: RATE }, { signal: new AbortController().signal });
        batch.push(performance.now() - t);
        await new Promise((resolve) => setTimeout(resolve, 600));
        streamed.push((await streamLive(stt, short, true)).finalMs);
      }
      await stt.close();
      const b = summarize(batch);
      const l = summarize(streamed);
      rows.push([config.label, warm ? 'warm spare' : 'cold spawn', b.p50, b.max, l.p50, l.max]);
    }
  }
  console.log(`\nCold process vs warm spare (ms): transcribe(hello, 2.3 s) fed at once; "${short.text}" (${short.speechTo.toFixed(2)} s) streamed live with the hint\n`);
  console.log(table(['model', 'process', 'transcribe p50', 'max', 'end → text p50', 'max'], rows));
}

const { clips, short } = await loadClips();
const probe = await new PocketsphinxStt().probe();
if (!probe.ok) {
  console.error(probe.message);
  process.exitCode = 1;
} else {
  console.log(`pocketsphinx via ffmpeg; ${clips.length} clips; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  await live(clips);
  await ablation(clips);
  await generation();
  await warmth(clips, short);
}
