import { ProtocolError } from '../errors.js';

/**
 * Structural checks werift does not make (it accepts `"garbage"` as an offer): a session
 * description with an audio section that offers Opus and carries ICE credentials and a DTLS
 * fingerprint. Throws ProtocolError `protocol_invalid_message` naming what is missing.
 */
export function assertAudioOffer(sdp: string): void {
  const lines = sdp.split(/\r?\n/);
  const fail = (what: string): never => {
    throw new ProtocolError('protocol_invalid_message', `webrtc.offer: ${what}`);
  };
  if (lines[0]?.trim() !== 'v=0') fail('SDP must start with v=0');
  if (!lines.some((line) => line.startsWith('o='))) fail('SDP has no origin (o=) line');
  if (!lines.some((line) => line.startsWith('m=audio '))) fail('SDP has no audio m-line');
  if (!lines.some((line) => /^a=rtpmap:\d+ opus\/48000/i.test(line))) fail('audio section does not offer Opus/48000');
  if (!lines.some((line) => line.startsWith('a=ice-ufrag:'))) fail('SDP has no ICE ufrag');
  if (!lines.some((line) => line.startsWith('a=ice-pwd:'))) fail('SDP has no ICE password');
  if (!lines.some((line) => line.startsWith('a=fingerprint:'))) fail('SDP has no DTLS fingerprint');
}

/** Removes candidate lines, for answers whose candidates are trickled separately. */
export function stripCandidates(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  return sdp
    .split(/\r?\n/)
    .filter((line) => !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates')
    .join(eol);
}
