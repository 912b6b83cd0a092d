import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import {
  CLIENT_MESSAGE_TYPES,
  CLOSE_CODES,
  ERROR_CODES,
  PROTOCOL_VERSION,
  SERVER_MESSAGE_TYPES,
  SESSION_STATES,
  VOICE_STATES,
  isRetryableClose,
  parseClientMessage,
  parseServerMessage,
  serializeClientMessage,
  serializeServerMessage,
  utf8ByteLength,
  type ClientMessage,
  type ServerMessage,
} from '../../src/protocol/index.js';

const clientFixtures: ClientMessage[] = [
  {
    type: 'session.hello',
    protocol: PROTOCOL_VERSION,
    token: 'secret-token',
    audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16_000, channels: 1 },
    options: { language: 'en-US', voice: 'alloy', playbook: 'booking', metadata: { tenant: 'acme', tier: 2, beta: true } },
  },
  { type: 'session.hello', protocol: 1, audio: { transport: 'webrtc', format: 'pcm16', sampleRate: 48_000 } },
  { type: 'session.resume', sessionId: 's_1', resumeToken: 'r_1', protocol: 1 },
  { type: 'webrtc.offer', sdp: 'v=0\r\n...', trickle: true },
  { type: 'webrtc.ice', candidate: 'candidate:1 1 udp 2116026367 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 },
  { type: 'webrtc.ice', candidate: null },
  { type: 'user.text', text: 'book a table for two' },
  { type: 'session.interrupt' },
  { type: 'playback.progress', replyId: 'r1', playedMs: 1240 },
  { type: 'ping', t: 1_700_000_000_000 },
  { type: 'session.close', reason: 'user hung up' },
];

const serverFixtures: ServerMessage[] = [
  {
    type: 'session.ready',
    sessionId: 's_1',
    resumeToken: 'r_1',
    protocol: 1,
    iceServers: [{ urls: ['stun:stun.example.org:3478'] }, { urls: 'turn:turn.example.org', username: 'u', credential: 'c' }],
    audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16_000, channels: 1, frameMs: 20 },
  },
  { type: 'session.resumed', sessionId: 's_1', state: 'listening', voice: 'silent', resumeToken: 'r_2' },
  { type: 'webrtc.answer', sdp: 'v=0\r\n...' },
  { type: 'webrtc.ice', candidate: null, sdpMid: '0' },
  { type: 'pong', t: 5 },
  { type: 'session.state', state: 'speaking', voice: 'silent', previous: 'thinking' },
  { type: 'session.state', state: 'interrupted.confirming', voice: 'speaking' },
  { type: 'vad.speech_start', atMs: 1200 },
  { type: 'vad.speech_end', atMs: 2400, durationMs: 1200, voicedMs: 980 },
  { type: 'interruption.false', replyId: 'r1', voicedMs: 420 },
  { type: 'interruption.confirmed', replyId: 'r1', voicedMs: 640, by: 'voice' },
  { type: 'transcript.partial', text: 'book a' },
  { type: 'transcript.final', text: 'book a table' },
  { type: 'reply.delta', replyId: 'r1', text: 'Sure' },
  { type: 'reply.done', replyId: 'r1', text: 'Sure, for when?', interrupted: false },
  { type: 'reply.audio_start', replyId: 'r1', sampleRate: 16_000 },
  { type: 'reply.audio_end', replyId: 'r1' },
  { type: 'tool.start', replyId: 'r1', callId: 'c1', name: 'book', arguments: { people: 2 } },
  { type: 'tool.end', replyId: 'r1', callId: 'c1', name: 'book', ok: true, result: { id: 'b7' } },
  { type: 'tool.end', replyId: 'r1', callId: 'c2', name: 'book', ok: false, error: 'no tables left' },
  { type: 'stage.change', from: 'intake', to: 'verification', reason: { kind: 'toolCall', tool: 'verify_identity' } },
  { type: 'stage.change', from: null, to: 'intake', reason: { kind: 'start' } },
  { type: 'stage.change', from: 'verification', to: null, reason: { kind: 'keyword', keyword: 'goodbye' } },
  {
    type: 'metrics.turn',
    turnId: 't1',
    userStoppedToFirstAudioMs: 712,
    endpointingMs: 200,
    speechEndToFirstAudioMs: 512,
    sttFinalLagMs: 80,
    llmFirstTokenMs: 210,
    ttsFirstAudioMs: 95,
    preemptive: 'used',
  },
  { type: 'session.idle', prompts: 0 },
  { type: 'avatar.audio', audio: 'AAEC', isLast: false, conversationId: 'c1' },
  { type: 'avatar.frames', frames: ['AAEC', 'AwQF'], isLast: true, conversationId: 'c1' },
  { type: 'avatar.interrupt', reason: 'barge-in' },
  { type: 'error', code: 'provider_timeout', message: 'TTS timed out', fatal: false },
];

describe('protocol codec', () => {
  it('round-trips every client message type', () => {
    expect(new Set(clientFixtures.map((message) => message.type))).toEqual(new Set(CLIENT_MESSAGE_TYPES));
    for (const message of clientFixtures) {
      const result = parseClientMessage(serializeClientMessage(message));
      expect(result).toEqual({ ok: true, message });
    }
  });

  it('round-trips every server message type', () => {
    expect(new Set(serverFixtures.map((message) => message.type))).toEqual(new Set(SERVER_MESSAGE_TYPES));
    for (const message of serverFixtures) {
      const result = parseServerMessage(serializeServerMessage(message));
      expect(result).toEqual({ ok: true, message });
    }
  });

  it('parses UTF-8 bytes as well as strings', () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ type: 'user.text', text: 'héllo 🎙' }));
    expect(parseClientMessage(bytes)).toEqual({ ok: true, message: { type: 'user.text', text: 'héllo 🎙' } });
  });

  it('drops unknown fields instead of passing them through', () => {
    const result = parseClientMessage('{"type":"ping","t":1,"admin":true}');
    expect(result).toEqual({ ok: true, message: { type: 'ping', t: 1 } });
  });

  it.each([
    ['not JSON', '{"type":', 'protocol_invalid_json'],
    ['invalid UTF-8 bytes', new Uint8Array([0x7b, 0xff, 0x7d]), 'protocol_invalid_json'],
    ['a JSON array', '[1,2]', 'protocol_invalid_message'],
    ['a JSON string', '"hello"', 'protocol_invalid_message'],
    ['no type', '{"t":1}', 'protocol_invalid_message'],
    ['an unknown type', '{"type":"session.destroy"}', 'protocol_invalid_message'],
    ['a server message sent by a client', '{"type":"pong","t":1}', 'protocol_invalid_message'],
    ['a bad sample rate', '{"type":"session.hello","protocol":1,"audio":{"transport":"websocket","format":"pcm16","sampleRate":8000}}', 'protocol_invalid_message'],
    ['a bad transport', '{"type":"session.hello","protocol":1,"audio":{"transport":"sip","format":"pcm16","sampleRate":16000}}', 'protocol_invalid_message'],
    ['stereo', '{"type":"session.hello","protocol":1,"audio":{"transport":"websocket","format":"pcm16","sampleRate":16000,"channels":2}}', 'protocol_invalid_message'],
    ['empty user text', '{"type":"user.text","text":""}', 'protocol_invalid_message'],
    ['negative playback position', '{"type":"playback.progress","replyId":"r","playedMs":-1}', 'protocol_invalid_message'],
    ['a newer protocol in hello', '{"type":"session.hello","protocol":2,"audio":{"future":true}}', 'protocol_unsupported_version'],
    ['a newer protocol in resume', '{"type":"session.resume","sessionId":"s","resumeToken":"r","protocol":7}', 'protocol_unsupported_version'],
  ] as const)('rejects %s with %s', (_name, input, code) => {
    const result = parseClientMessage(input);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.name).toBe('ProtocolError');
      expect(result.error.code).toBe(code);
    }
  });

  it('rejects messages over the byte limit, counting UTF-8 bytes rather than characters', () => {
    const ascii = JSON.stringify({ type: 'user.text', text: 'a'.repeat(100) });
    expect(parseClientMessage(ascii, ascii.length).ok).toBe(true);
    const tooBig = parseClientMessage(ascii, ascii.length - 1);
    expect(tooBig.ok === false && tooBig.error.code).toBe('protocol_message_too_large');

    const emoji = JSON.stringify({ type: 'user.text', text: '🎙'.repeat(40) }); // 2 UTF-16 units, 4 bytes each
    const bytes = utf8ByteLength(emoji);
    expect(bytes).toBe(new TextEncoder().encode(emoji).byteLength);
    expect(parseClientMessage(emoji, bytes).ok).toBe(true);
    const over = parseClientMessage(emoji, bytes - 1);
    expect(over.ok === false && over.error.code).toBe('protocol_message_too_large');
    const overBytes = parseClientMessage(new TextEncoder().encode(emoji), bytes - 1);
    expect(overBytes.ok === false && overBytes.error.code).toBe('protocol_message_too_large');
  });

  it('never echoes field values in error messages (they may be secrets)', () => {
    const result = parseClientMessage(
      JSON.stringify({ type: 'session.resume', sessionId: 's', resumeToken: 12345678987654321, protocol: 1 }),
    );
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.message).toContain('resumeToken');
      expect(result.error.message).not.toContain('12345678987654321');
    }
  });

  it('rejects server messages the same way on the client side', () => {
    const cases: Array<[string, ErrorCode]> = [
      ['nope', 'protocol_invalid_json'],
      ['{"type":"session.state","state":"not a path!","voice":"silent"}', 'protocol_invalid_message'],
      ['{"type":"session.state","state":"listening","voice":"shouting"}', 'protocol_invalid_message'],
      ['{"type":"interruption.confirmed","replyId":"r1","voicedMs":600,"by":"telepathy"}', 'protocol_invalid_message'],
      ['{"type":"error","code":"made_up","message":"x","fatal":true}', 'protocol_invalid_message'],
      ['{"type":"avatar.audio","audio":"not base64!","isLast":true,"conversationId":"c"}', 'protocol_invalid_message'],
      ['{"type":"session.ready","protocol":9}', 'protocol_unsupported_version'],
    ];
    for (const [input, code] of cases) {
      const result = parseServerMessage(input);
      expect(result.ok === false && result.error.code).toBe(code);
    }
    const big = parseServerMessage(JSON.stringify({ type: 'transcript.final', text: 'x'.repeat(50) }), 20);
    expect(big.ok === false && big.error.code).toBe('protocol_message_too_large');
  });

  it('serializing an invalid message throws ProtocolError', () => {
    const bad = { type: 'reply.delta', replyId: '', text: 'x' } as ServerMessage;
    expect(() => serializeServerMessage(bad)).toThrow(expect.objectContaining({ code: 'protocol_invalid_message' }));
  });
});

describe('error codes and close codes', () => {
  it('maps every error code to an application close code in 4000–4999', () => {
    expect(ERROR_CODES.length).toBeGreaterThan(20);
    for (const code of ERROR_CODES) {
      expect(CLOSE_CODES[code]).toBeGreaterThanOrEqual(4000);
      expect(CLOSE_CODES[code]).toBeLessThanOrEqual(4999);
    }
    expect(CLOSE_CODES.protocol_invalid_message).toBe(4400);
    expect(CLOSE_CODES.auth_failed).toBe(4401);
    expect(CLOSE_CODES.session_resume_refused).toBe(4403);
    expect(CLOSE_CODES.session_not_found).toBe(4404);
    expect(CLOSE_CODES.session_expired).toBe(4408);
    expect(CLOSE_CODES.session_limit).toBe(4429);
    expect(CLOSE_CODES.internal).toBe(4500);
  });

  it('tells a client to resume after network and server failures but not after its own faults', () => {
    expect(isRetryableClose(1006)).toBe(true);
    expect(isRetryableClose(1001)).toBe(true);
    expect(isRetryableClose(4500)).toBe(true);
    expect(isRetryableClose(1000)).toBe(false);
    expect(isRetryableClose(4401)).toBe(false);
    expect(isRetryableClose(4408)).toBe(false);
  });
});

describe('docs/protocol.md', () => {
  const docs = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

  it('has one table row per error code with the close code the code maps to', () => {
    const rows = [...docs.matchAll(/^\| `([a-z_]+)` \| [^|]+ \| (\d{4}) \|$/gm)].map((match) => [match[1], Number(match[2])]);
    expect(Object.fromEntries(rows)).toEqual(CLOSE_CODES);
    expect(rows).toHaveLength(ERROR_CODES.length);
  });

  it('documents every message type under its own heading, in the order of the schema unions', () => {
    for (const type of [...CLIENT_MESSAGE_TYPES, ...SERVER_MESSAGE_TYPES]) {
      expect(docs).toContain(`### \`${type}\``);
    }
    const server = docs.slice(docs.indexOf('## Server → client messages'));
    const headings = [...server.matchAll(/^### `([a-z._]+)`$/gm)].map((match) => match[1]);
    expect(headings).toEqual(SERVER_MESSAGE_TYPES);
  });

  it('has one row per public session state and per voice state', () => {
    const states = [...docs.matchAll(/^\| `([a-z.]+)` \| state \|/gm)].map((match) => match[1]);
    expect(states).toEqual([...SESSION_STATES]);
    const voices = [...docs.matchAll(/^\| `([a-z]+)` \| voice \|/gm)].map((match) => match[1]);
    expect(voices).toEqual([...VOICE_STATES]);
  });
});
