/**
 * `voxstate demo`: a scripted conversation through the real session actor, in virtual time, with
 * the fake providers. It prints every state change, each turn and the final history, so you can see
 * the statechart at work (the end of turn waiting out a thinking pause, speculative replies, barge-in,
 * a backchannel that does not cut the reply, a typed turn, a
 * dropped and resumed connection) without a microphone or an API key. The user's voice goes through
 * the real turn detector, so every VAD event has the timing the real VAD gives it.
 */
import { Simulation, type SimRecord } from '../testing/index.js';
import type { ChatMessage } from '../providers/types.js';

type Out = (line: string) => void;

const REPLIES: Record<string, string> = {
  hello: 'Hello! I can book a table for you. For how many people?',
  table: 'A table for two tomorrow at seven. Shall I confirm the booking under your name?',
  yes: 'Done. Your table is booked for two people tomorrow at seven. Is there anything else I can do?',
  weather: 'I cannot see the weather from here, sorry.',
};

function respond(messages: readonly ChatMessage[]): string[] {
  const last = [...messages].reverse().find((m) => m.role === 'user')?.content.toLowerCase() ?? '';
  const key = Object.keys(REPLIES).find((k) => last.includes(k));
  return [key === undefined ? `You said: ${last}.` : (REPLIES[key] as string)];
}

function describe(record: SimRecord): string | undefined {
  const at = `${(record.t / 1000).toFixed(3).padStart(7)} s`;
  switch (record.kind) {
    case 'state':
      return `${at}  state      ${record.state.padEnd(24)} voice: ${record.voice}`;
    case 'input':
      if (record.input === 'clearOutput') return `${at}  output     the transport's queued agent audio is dropped`;
      return `${at}  user       ${record.input}${record.detail === undefined ? '' : ` "${record.detail}"`}`;
    case 'emit': {
      const e = record.event;
      if (e.type === 'reply.delta' || e.type === 'reply.paused' || e.type === 'reply.resumed') return undefined;
      if (e.type === 'reply.done') return `${at}  agent      ${e.interrupted ? 'was cut off after' : 'said'} "${e.text}"`;
      if (e.type === 'transcript.final') return `${at}  heard      "${e.text}"`;
      if (e.type === 'error') return `${at}  error      ${e.code}: ${e.message}`;
      if (e.type === 'reply.audioStart') return `${at}  agent      starts speaking (reply ${e.replyId})`;
      if (e.type === 'interruption.false') return `${at}  event      false interruption (${e.voicedMs} ms voiced): the agent goes on where it paused`;
      if (e.type === 'interruption.confirmed') return `${at}  event      interruption confirmed by ${e.by} (${e.voicedMs} ms voiced)`;
      if (e.type === 'vad.speechEnd') return `${at}  vad        end of speech (${e.voicedMs} ms voiced of ${e.durationMs} ms)`;
      if (e.type === 'transcript.partial') return `${at}  hearing    "${e.text}"`;
      if (e.type === 'turn.endpoint')
        return `${at}  turn       ends ${e.endpointingMs} ms after the voice stopped (${e.by}${e.probability === undefined ? '' : `, p=${e.probability.toFixed(2)}`})`;
      if (e.type === 'reply.preemptive') return `${at}  agent      speculative reply ${e.replyId} ${e.outcome}`;
      return `${at}  event      ${e.type}`;
    }
    case 'frame':
      return undefined;
  }
}

export async function runDemo(out: Out): Promise<void> {
  out('voxstate demo — a scripted conversation through the real session actor (machines/session.ts),');
  out('in virtual time, with fake STT/LLM/TTS. No audio device, no network, no API key.');
  out('The voice server (`voxstate serve`) is what you run to talk to it for real.\n');

  const sim = new Simulation({
    respond,
    // A streaming recognizer: each stretch of speech is a final segment 150 ms after the voice stops.
    stt: { latencyMs: 180, streaming: true },
    llm: { firstTokenMs: 250, tokenIntervalMs: 15 },
    tts: { firstChunkMs: 120, msPerWord: 220 },
    session: { sessionTtlMs: 30_000 },
    systemPrompt: 'You are the booking assistant of a small restaurant.',
  }).start();

  await sim.say('hello', 900);
  await sim.advance(6_000);
  // A thinking pause after "for": the end of turn waits it out (the lexical detector), one turn.
  await sim.say('a table for', 900);
  await sim.advance(700);
  await sim.say('two tomorrow at seven', 1_200);
  await sim.advance(2_000); // the agent is speaking…
  // "yeah": 420 ms of voice, under the 600 ms of voiced speech an interruption needs. The agent
  // pauses at its first voiced window and resumes 600 ms after the user's pause.
  await sim.say('yeah', 420);
  await sim.advance(1_200);
  sim.dropTransport(); // the phone line drops mid-sentence
  await sim.advance(3_000);
  sim.resume('a-forged-token'); // refused
  sim.resume(); // the client reconnects with its resume token
  await sim.advance(6_000);
  await sim.say('yes', 500);
  await sim.advance(1_500);
  await sim.say('wait what about the weather', 1_200); // a real barge-in: the reply is cut
  await sim.advance(8_000);
  sim.type('thanks bye');
  await sim.advance(4_000);
  sim.close();
  await sim.advance(1);

  for (const record of sim.records) {
    const line = describe(record);
    if (line !== undefined) out(line);
  }
  out('\nhistory (what the LLM will see next time; cut replies keep only the words that were heard):');
  for (const message of sim.history) {
    const flag = message.role === 'assistant' && message.interrupted ? ' [interrupted]' : '';
    out(`  ${message.role.padEnd(9)} ${message.content}${flag}`);
  }
  out(`\nprovider calls: ${sim.ledger.calls.length} (${sim.ledger.count(undefined, 'aborted')} aborted by barge-in or close), still open: ${sim.ledger.open().length}`);
}
