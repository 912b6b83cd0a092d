/**
 * The span tree of real turns over a loopback VoiceServer, recorded by an in-memory exporter
 * registered as the global tracer provider (@opentelemetry/sdk-trace-base, a devDependency: the
 * library itself only calls @opentelemetry/api).
 */
import { type HrTime, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { GoogleStt } from '../../src/providers/google/index.js';
import type { ChatMessage, Tool } from '../../src/providers/types.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { closeSpeech, concat, silence, speech } from '../helpers/speech.js';
import { scriptedRecognizer } from '../providers/servers/google-scripted.js';
import { GoogleServer } from '../providers/servers/google-server.js';
import { ScenarioClient } from '../scenario/harness.js';
import { fixture, RawClient, streamRealtime } from '../server/helpers.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  trace.disable();
  await provider.shutdown();
  await closeSpeech();
});

const servers: VoiceServer[] = [];
const clients: RawClient[] = [];
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  for (const fn of cleanup.splice(0).reverse()) await fn();
  exporter.reset();
});

const HEARD = 'a table for two please';
const REPLY = 'A table for two is free at seven.';
const ARGUMENTS = '{"party":2}';
const RESULT = { free: 'at seven o clock' };

/** A fake LLM with a model name, as real providers have. */
class ModelLlm extends FakeLlm {
  readonly model = 'fake-model-1';
}

const lookup: Tool = {
  name: 'lookup_table',
  description: 'Finds a free table.',
  parameters: { type: 'object', properties: { party: { type: 'number' } } },
  execute: async () => RESULT,
};

async function start(options: Partial<VoiceServerOptions> = {}): Promise<string> {
  // First the tool call, then (with its result in the conversation) the answer.
  const llm = new ModelLlm({
    respond: (messages: readonly ChatMessage[]) => (messages.at(-1)?.role === 'tool' ? [REPLY] : [{ toolCall: { name: 'lookup_table', arguments: ARGUMENTS } }]),
  });
  const server = new VoiceServer({ port: 0, vad: false, tools: [lookup], providers: { stt: new FakeStt({ recognize: () => HEARD }), llm, tts: new FakeTts({ msPerWord: 50 }) }, ...options });
  servers.push(server);
  return (await server.start()).url;
}

function client(url: string): RawClient {
  const c = new RawClient(url);
  clients.push(c);
  return c;
}

const ms = (t: HrTime): number => t[0] * 1000 + t[1] / 1e6;
/** Span times come from one wall clock in ms; hrtime conversion may round by a few µs. */
const EPSILON_MS = 0.01;

function named(spans: readonly ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((s) => s.name === name);
}

function one(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = named(spans, name);
  expect(found, name).toHaveLength(1);
  return found[0] as ReadableSpan;
}

/** Every string in every attribute and span event of `spans`. */
function strings(spans: readonly ReadableSpan[]): string[] {
  return spans.flatMap((s) => [...Object.values(s.attributes), ...s.events.flatMap((e) => Object.values(e.attributes ?? {}))].filter((v): v is string => typeof v === 'string'));
}

describe('OpenTelemetry spans of a turn', () => {
  it('a voice turn with a tool call: one root span; end of turn, STT, two chat calls, the tool, TTS and first audio as its children; no text in attributes', async () => {
    const url = await start({ vad: {} });
    const c = client(url);
    const ready = await c.hello({ transport: 'websocket', sampleRate: 16000 });
    const { pcm, sampleRate } = fixture('hello.16k.wav');
    await streamRealtime((frame) => c.sendAudio(frame), pcm, sampleRate, 900);
    expect(await c.next('reply.done')).toMatchObject({ replyId: '1', text: REPLY, interrupted: false });
    await c.next('metrics.turn');
    const spans = exporter.getFinishedSpans();

    const turn = one(spans, 'voxstate.turn');
    expect(turn.parentSpanContext).toBeUndefined();
    expect(turn.attributes).toMatchObject({
      'voxstate.session.id': ready['sessionId'],
      'voxstate.turn.id': 1,
      'voxstate.turn.source': 'voice',
      'voxstate.preemptive': 'off',
      'voxstate.turn.interrupted': false,
    });
    const children = spans.filter((s) => s !== turn);
    for (const child of children) {
      expect(child.spanContext().traceId, child.name).toBe(turn.spanContext().traceId);
      expect(child.parentSpanContext?.spanId, child.name).toBe(turn.spanContext().spanId);
      expect(ms(child.startTime), child.name).toBeGreaterThanOrEqual(ms(turn.startTime) - EPSILON_MS);
    }
    expect(children.map((s) => s.name).sort()).toEqual(
      ['chat fake-model-1', 'chat fake-model-1', 'execute_tool lookup_table', 'voxstate.end_of_turn', 'voxstate.first_audio', 'voxstate.stt', ...named(spans, 'voxstate.tts').map(() => 'voxstate.tts')].sort(),
    );
    expect(named(spans, 'voxstate.tts').length).toBeGreaterThanOrEqual(1);

    const endOfTurn = one(spans, 'voxstate.end_of_turn');
    expect(['detector', 'silence', 'timeout']).toContain(endOfTurn.attributes['voxstate.end_of_turn.by']);
    expect(endOfTurn.attributes['voxstate.end_of_turn.endpointing_ms']).toBeGreaterThan(0);
    // The turn starts at the audio edge, where the end-of-turn wait started.
    expect(ms(endOfTurn.startTime)).toBeCloseTo(ms(turn.startTime), 1);

    const stt = one(spans, 'voxstate.stt');
    expect(stt.kind).toBe(SpanKind.CLIENT);
    expect(stt.attributes).toMatchObject({ 'voxstate.provider': 'fake-stt', 'voxstate.outcome': 'completed', 'voxstate.stt.streaming': false });
    // A batch recognizer transcribes once the turn has ended.
    expect(ms(stt.startTime)).toBeGreaterThanOrEqual(ms(endOfTurn.endTime) - EPSILON_MS);

    const [first, second] = named(spans, 'chat fake-model-1').sort((a, b) => ms(a.startTime) - ms(b.startTime)) as [ReadableSpan, ReadableSpan];
    for (const chat of [first, second]) {
      expect(chat.kind).toBe(SpanKind.CLIENT);
      expect(chat.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'fake-llm',
        'gen_ai.system': 'fake-llm',
        'gen_ai.request.model': 'fake-model-1',
        'gen_ai.conversation.id': ready['sessionId'],
        'voxstate.outcome': 'completed',
      });
      expect(chat.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      expect(typeof chat.attributes['gen_ai.usage.output_tokens']).toBe('number');
      expect(ms(chat.startTime)).toBeGreaterThanOrEqual(ms(stt.endTime) - EPSILON_MS);
    }
    expect(first.attributes['voxstate.llm.tool_calls']).toBe(1);
    expect(second.attributes['voxstate.llm.tool_calls']).toBe(0);

    const tool = one(spans, 'execute_tool lookup_table');
    expect(tool.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_table', 'voxstate.outcome': 'completed' });
    expect(typeof tool.attributes['gen_ai.tool.call.id']).toBe('string');
    expect(tool.status.code).not.toBe(SpanStatusCode.ERROR);
    // First chat → the tool → the chat with its result.
    expect(ms(tool.startTime)).toBeGreaterThanOrEqual(ms(first.startTime));
    expect(ms(tool.endTime)).toBeLessThanOrEqual(ms(second.startTime) + EPSILON_MS);

    const tts = named(spans, 'voxstate.tts');
    for (const segment of tts) {
      expect(segment.attributes).toMatchObject({ 'voxstate.provider': 'fake-tts', 'voxstate.outcome': 'completed' });
      expect(segment.attributes['voxstate.tts.characters']).toBeGreaterThan(0);
      expect(ms(segment.startTime)).toBeGreaterThanOrEqual(ms(second.startTime) - EPSILON_MS);
    }
    expect(tts.reduce((n, s) => n + (s.attributes['voxstate.tts.characters'] as number), 0)).toBe(REPLY.length);

    const firstAudio = one(spans, 'voxstate.first_audio');
    expect(ms(firstAudio.startTime)).toBeCloseTo(ms(turn.startTime), 1);
    expect(ms(firstAudio.endTime)).toBeGreaterThanOrEqual(Math.min(...tts.map((s) => ms(s.startTime))));
    expect(ms(turn.endTime)).toBeGreaterThanOrEqual(ms(firstAudio.endTime) - EPSILON_MS);

    // Without traceContent no words of the user or the agent, no tool arguments or results.
    const text = strings(spans).join('\n');
    for (const secret of ['table for two', 'free at seven', '"party"', 'seven o clock']) expect(text).not.toContain(secret);
  });

  it('traceContent: true puts the typed text, the reply, the spoken segments and the tool call in attributes; a text turn has no end-of-turn or STT span', async () => {
    const url = await start({ traceContent: true });
    const c = client(url);
    await c.hello();
    c.send({ type: 'user.text', text: 'a table for two, please' });
    await c.next('reply.done');
    await c.next('metrics.turn');
    const spans = exporter.getFinishedSpans();
    const turn = one(spans, 'voxstate.turn');
    expect(turn.attributes).toMatchObject({ 'voxstate.turn.source': 'text', 'voxstate.user.text': 'a table for two, please', 'voxstate.reply.text': REPLY });
    expect(turn.attributes['voxstate.preemptive']).toBeUndefined();
    expect(named(spans, 'voxstate.end_of_turn')).toEqual([]);
    expect(named(spans, 'voxstate.stt')).toEqual([]);
    const tool = one(spans, 'execute_tool lookup_table');
    expect(tool.attributes['gen_ai.tool.call.arguments']).toBe(ARGUMENTS);
    expect(JSON.parse(String(tool.attributes['gen_ai.tool.call.result']))).toEqual(RESULT);
    expect(named(spans, 'voxstate.tts').map((s) => s.attributes['voxstate.tts.text']).join(' ')).toBe(REPLY);
    expect(named(spans, 'chat fake-model-1')).toHaveLength(2);
    // The typed turn's first audio is measured from the turn's start.
    expect(ms(one(spans, 'voxstate.first_audio').startTime)).toBeCloseTo(ms(turn.startTime), 1);
  });

  it('a failing LLM call is an ERROR span with its code, under a turn marked with the error', async () => {
    const llm = new FakeLlm({ respond: () => ['never'], fail: () => true });
    const server = new VoiceServer({ port: 0, vad: false, providers: { stt: new FakeStt({ recognize: () => '' }), llm, tts: new FakeTts() } });
    servers.push(server);
    const c = client((await server.start()).url);
    await c.hello();
    c.send({ type: 'user.text', text: 'hello?' });
    await c.next('reply.done');
    const spans = exporter.getFinishedSpans();
    const turn = one(spans, 'voxstate.turn');
    expect(turn.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'provider_failed' });
    expect(turn.attributes).toMatchObject({ 'error.type': 'provider_failed', 'voxstate.turn.interrupted': true });
    expect(turn.events.map((e) => [e.name, e.attributes?.['error.type']])).toEqual([['voxstate.error', 'provider_failed']]);
    const chat = one(spans, 'chat');
    expect(chat.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'provider_failed' });
    expect(chat.attributes).toMatchObject({ 'voxstate.outcome': 'failed', 'error.type': 'provider_failed' });
    expect(chat.attributes['gen_ai.request.model']).toBeUndefined();
    expect(chat.parentSpanContext?.spanId).toBe(turn.spanContext().spanId);
  });

  it('a streaming recognizer and a committed speculative reply: the STT span starts at the onset, before the audio edge; the early LLM call joins the turn', async () => {
    const sentence = 'I would like to book a table for two people.';
    const google = await new GoogleServer().start();
    cleanup.push(() => google.close());
    google.recognizeHandlers.push(scriptedRecognizer({ phrases: [sentence] }));
    const server = new VoiceServer({
      port: 0,
      vad: {},
      providers: { stt: new GoogleStt(google.clientOptions), llm: new ModelLlm({ respond: () => ['Booked.'] }), tts: new FakeTts({ sampleRate: 16_000, msPerWord: 50 }) },
    });
    servers.push(server);
    const c = await ScenarioClient.connect((await server.start()).url);
    cleanup.push(() => c.close());
    await c.play(concat([await speech(sentence), silence(1500)])).done;
    await c.next('reply.done', (m) => m['interrupted'] === false, 15_000);
    await c.next('metrics.turn');
    expect(c.of('metrics.turn')[0]?.m).toMatchObject({ preemptive: 'used' });
    const spans = exporter.getFinishedSpans();
    const turn = one(spans, 'voxstate.turn');
    expect(turn.attributes).toMatchObject({ 'voxstate.turn.source': 'voice', 'voxstate.preemptive': 'used' });
    const stt = one(spans, 'voxstate.stt');
    const endOfTurn = one(spans, 'voxstate.end_of_turn');
    const chat = one(spans, 'chat fake-model-1');
    expect(stt.attributes).toMatchObject({ 'voxstate.stt.streaming': true, 'voxstate.outcome': 'completed' });
    expect(ms(stt.startTime)).toBeLessThan(ms(endOfTurn.startTime));
    expect(ms(turn.startTime)).toBeCloseTo(ms(stt.startTime), 1);
    // The speculation started during the end-of-turn silence, before the decision.
    expect(ms(chat.startTime)).toBeLessThan(ms(endOfTurn.endTime));
    for (const child of [stt, endOfTurn, chat, one(spans, 'voxstate.first_audio')]) expect(child.parentSpanContext?.spanId).toBe(turn.spanContext().spanId);
    // The first audio is measured from the audio edge.
    expect(ms(one(spans, 'voxstate.first_audio').startTime)).toBeCloseTo(ms(endOfTurn.startTime), 1);
  });
});
