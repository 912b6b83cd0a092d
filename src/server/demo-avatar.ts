/**
 * The demo page's avatar, as browser script source (it is inlined into the page by demo-page.ts; no
 * build step, no dependency). Three parts, each a plain function of its inputs:
 *
 * - `decodeAnimation(bytes)`: a minimal protobuf reader for one Motion Server envelope
 *   (`Message` → `ServerResponseAnimation` → `FlameAnimation` → `Flame`, field numbers of
 *   docs/shared motion-protocol §3). It keeps what a 2D face can show — jaw opening (`jaw_pose[0]`),
 *   both eyelids (`eye_lid`), head rotation (`rotation` + `neck_pose`) and gaze (`eye_pose`) — and
 *   reads repeated floats packed or unpacked. FLAME's 100 `expression` coefficients are a PCA basis
 *   of a 3D mesh; without the mesh they have no 2D meaning, so they are skipped.
 * - `createAvatarTimeline()`: schedules keyframes against the audio clock. Keyframe k of a
 *   conversation (the Motion Server's req_id, one per reply) animates the reply's audio from
 *   k × 40 ms. The playout worklet reports `{replyId, playedMs, at, playing}`: the reply's audio up
 *   to `playedMs` has been rendered, and its last rendered sample is heard at AudioContext time `at`.
 *   So at the context time `t` being heard, the reply is at `playedMs + (t − at) × 1000` ms, and the
 *   face shows the keyframe of that instant (interpolated between neighbours) — never the one that
 *   arrived last. A conversation is bound to the reply whose audio starts around it (its audio and
 *   frames carry the req_id, the reply's audio carries the replyId).
 * - `drawFace(g, w, h, pose)`: a flat face on a 2D canvas. At rest the face is perfectly still (no
 *   idle animation), so every pixel that changes comes from a keyframe.
 */
export const AVATAR_SCRIPT = String.raw`
const KEYFRAME_MS = 40; // the Motion Server's 25 fps of audio time
const REST = Object.freeze({ jaw: 0, lidL: 0, lidR: 0, pitch: 0, yaw: 0, roll: 0, gazeX: 0, gazeY: 0 });

// ---- protobuf: just enough to read an animation envelope
function decodeAnimation(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  function varint(r) {
    let value = 0, scale = 1, byte;
    do {
      if (r.pos >= r.end) throw new Error('truncated varint');
      byte = bytes[r.pos++];
      value += (byte & 0x7f) * scale;
      scale *= 128;
    } while (byte & 0x80);
    return value;
  }
  // Calls visit(field, wire, r) for each field of the message in [start, end); skips what it does not take.
  function fields(start, end, visit) {
    const r = { pos: start, end };
    while (r.pos < end) {
      const tag = varint(r), field = Math.floor(tag / 8), wire = tag & 7;
      const before = r.pos;
      if (visit(field, wire, r) && r.pos !== before) continue;
      r.pos = before;
      if (wire === 0) varint(r);
      else if (wire === 1) r.pos += 8;
      else if (wire === 2) { const length = varint(r); r.pos += length; } // not r.pos += varint(r): that reads r.pos first
      else if (wire === 5) r.pos += 4;
      else throw new Error('unsupported wire type ' + wire);
      if (r.pos > end) throw new Error('truncated field');
    }
  }
  function bytesOf(r) {
    const length = varint(r), start = r.pos;
    r.pos += length;
    if (r.pos > r.end) throw new Error('truncated bytes');
    return [start, r.pos];
  }
  function floats(wire, r, into) {
    if (wire === 5) { into.push(view.getFloat32(r.pos, true)); r.pos += 4; return true; }
    if (wire !== 2) return false;
    const [start, end] = bytesOf(r);
    for (let p = start; p + 4 <= end; p += 4) into.push(view.getFloat32(p, true));
    return true;
  }
  function flame(start, end) {
    const v = { 2: [], 3: [], 4: [], 5: [], 6: [] }; // rotation, neck_pose, jaw_pose, eye_pose, eye_lid
    fields(start, end, (field, wire, r) => (v[field] ? floats(wire, r, v[field]) : false));
    const at = (list, i) => (Number.isFinite(list[i]) ? list[i] : 0);
    const [rot, neck, jaw, eye, lid] = [v[2], v[3], v[4], v[5], v[6]];
    return {
      jaw: at(jaw, 0),
      lidL: at(lid, 0), lidR: lid.length > 1 ? at(lid, 1) : at(lid, 0),
      pitch: at(rot, 0) + at(neck, 0), yaw: at(rot, 1) + at(neck, 1), roll: at(rot, 2) + at(neck, 2),
      gazeX: (at(eye, 1) + at(eye, 4)) / 2, gazeY: (at(eye, 0) + at(eye, 3)) / 2,
    };
  }
  let type = 0, animation = null;
  fields(0, bytes.length, (field, wire, r) => {
    if (field === 1 && wire === 0) { type = varint(r); return true; }
    if (field === 6 && wire === 2) { animation = bytesOf(r); return true; }
    return false;
  });
  if (type !== 5 || animation === null) return null; // not SERVER_RESPONSE_ANIMATION
  const out = { reqId: '', end: false, keyframes: [] };
  fields(animation[0], animation[1], (field, wire, r) => {
    if (field === 2 && wire === 2) { const [s, e] = bytesOf(r); out.reqId = new TextDecoder().decode(bytes.subarray(s, e)); return true; }
    if (field === 3 && wire === 0) { out.end = varint(r) !== 0; return true; }
    if (field === 4 && wire === 2) {
      const [s, e] = bytesOf(r);
      fields(s, e, (f, w, rr) => {
        if (f !== 1 || w !== 2) return false;
        const [fs, fe] = bytesOf(rr);
        out.keyframes.push(flame(fs, fe));
        return true;
      });
      return true;
    }
    return false;
  });
  return out;
}

// ---- the schedule: keyframes on the audio clock
function mix(a, b, f) {
  const out = {};
  for (const key in REST) out[key] = a[key] + (b[key] - a[key]) * f;
  return out;
}
function createAvatarTimeline(options) {
  const easeMs = (options && options.easeMs) || 250;
  const maxAheadMs = (options && options.maxAheadMs) || 250;
  const conversations = new Map(); // id → { id, reply, frames: [], base, ended, endedAt }
  const byReply = new Map(); // replyId → conversation
  const dead = new Set();
  let pending = []; // conversations whose reply's audio has not started yet
  // The reply whose audio started last. A new conversation is its avatar unless it has one already;
  // then the conversation waits for the next reply (a reply's motion can arrive before its audio).
  let open = null;
  let clock = null; // the playout's last report
  // shown: the last pose drawn from a keyframe (easing starts from it); current: the last pose returned.
  let shown = REST, current = REST, idleSince = -1, last = { conversation: '', keyframe: -1 };
  const stats = { keyframes: 0, dropped: 0 };

  function bind(c, reply) {
    c.reply = reply;
    byReply.set(reply, c);
  }
  function conversation(id) {
    if (dead.has(id)) return null;
    let c = conversations.get(id);
    if (c) return c;
    c = { id, reply: null, frames: [], base: 0, ended: false };
    conversations.set(id, c);
    if (open !== null && !byReply.has(open)) bind(c, open);
    else pending.push(c);
    return c;
  }
  function forget(c) {
    conversations.delete(c.id);
    if (c.reply !== null && byReply.get(c.reply) === c) byReply.delete(c.reply);
  }
  return {
    stats,
    /** reply.audio_start: this reply's audio is about to play. */
    audioStart(replyId) {
      open = replyId;
      for (const c of byReply.values()) if (c.reply !== replyId) forget(c);
      const c = pending.shift();
      pending = [];
      if (c && !byReply.has(replyId)) bind(c, replyId);
    },
    /** avatar.audio: the conversation exists (its frames follow). */
    audio(id) {
      conversation(id);
    },
    /** avatar.frames, decoded: keyframes in order; isLast ends the conversation. */
    frames(id, keyframes, isLast) {
      const c = conversation(id);
      if (!c) { stats.dropped += keyframes.length; return; }
      for (const k of keyframes) c.frames.push(k);
      stats.keyframes += keyframes.length;
      if (isLast) c.ended = true;
    },
    /** The playout worklet's report. */
    clock(report) {
      clock = report;
    },
    /** Barge-in: every conversation so far is over; their late frames are dropped. */
    interrupt() {
      for (const c of conversations.values()) dead.add(c.id);
      conversations.clear();
      byReply.clear();
      pending = [];
      open = null;
      shown = REST;
      current = REST;
      idleSince = -1;
      last = { conversation: '', keyframe: -1 };
    },
    /**
     * The pose for AudioContext time t (the time being heard). held: the server paused the reply
     * (interrupted.*): the face holds its pose. Returns { pose, keyframe, conversation, audioMs, active }:
     * active means the pose will change by itself (ask again next animation frame); otherwise only new
     * frames or a clock report change it.
     */
    poseAt(t, held) {
      const c = clock && clock.replyId !== null ? byReply.get(clock.replyId) : undefined;
      if (!c || (c.frames.length === 0 && c.base === 0)) {
        shown = REST; current = REST; idleSince = -1; last = { conversation: '', keyframe: -1 };
        return { pose: REST, keyframe: -1, conversation: '', audioMs: -1, active: false };
      }
      const ahead = Math.min(t - clock.at, clock.playing ? maxAheadMs / 1000 : 0);
      const audioMs = clock.playedMs + ahead * 1000;
      const playing = clock.playing || t < clock.at;
      const x = audioMs / KEYFRAME_MS, k = Math.floor(x);
      // Frames whose time has gone by are of no more use (one is kept to interpolate from).
      if (k - 1 - c.base > 50) { c.frames.splice(0, k - 1 - c.base); c.base = k - 1; }
      const a = c.frames[k - c.base], b = c.frames[k + 1 - c.base];
      let target, keyframe = -1;
      if (k < 0) target = REST;
      else if (a) { target = b ? mix(a, b, x - k) : a; keyframe = k; }
      else if (!c.ended && c.frames.length > 0) { target = c.frames[c.frames.length - 1]; keyframe = c.base + c.frames.length - 1; } // frames are late: hold
      else target = REST;
      if (held) return { pose: current, keyframe: last.keyframe, conversation: c.id, audioMs, active: false };
      if (playing && keyframe >= 0) {
        idleSince = -1;
        shown = target;
        current = target;
        last = { conversation: c.id, keyframe };
        return { pose: target, keyframe, conversation: c.id, audioMs, active: true };
      }
      // Nothing is heard (the reply ended, or its audio ran dry): the face eases back to rest.
      if (idleSince < 0) idleSince = t;
      const f = Math.min(1, ((t - idleSince) * 1000) / easeMs);
      const pose = f >= 1 ? REST : mix(shown, REST, f);
      current = pose;
      if (f >= 1) { shown = REST; last = { conversation: '', keyframe: -1 }; }
      return { pose, keyframe: f >= 1 ? -1 : last.keyframe, conversation: c.id, audioMs, active: f < 1 || playing };
    },
  };
}

// ---- the face
function drawFace(g, w, h, p) {
  const s = Math.min(w, h);
  const open = Math.max(0, Math.min(1.3, p.jaw / 0.3)); // jaw_pose[0] in radians; ~0.3 is wide open
  const fx = p.yaw * s, fy = p.pitch * s; // features move more than the outline: a turn, not a slide
  g.clearRect(0, 0, w, h);
  g.save();
  g.translate(w / 2 + fx * 0.3, h / 2 + fy * 0.3);
  g.rotate(-p.roll * 1.5);
  g.lineWidth = s * 0.012;
  g.strokeStyle = '#5b4636';
  // head (the chin drops with the jaw), its hair inside the outline
  const head = () => { g.beginPath(); g.ellipse(0, s * 0.01 + open * s * 0.015, s * 0.34, s * 0.42 + open * s * 0.03, 0, 0, Math.PI * 2); };
  g.fillStyle = '#f1c7a1';
  head(); g.fill();
  g.save();
  head(); g.clip();
  g.fillStyle = '#4a3426';
  g.beginPath(); g.ellipse(fx * 0.2, -s * 0.4 + fy * 0.2, s * 0.46, s * 0.22, 0, 0, Math.PI * 2); g.fill();
  g.restore();
  head(); g.stroke();
  g.translate(fx * 0.7, fy * 0.7);
  // eyes with eyelids (eye_lid 0 open … 1 closed)
  for (const [side, lid] of [[-1, p.lidL], [1, p.lidR]]) {
    const ex = side * s * 0.13, ey = -s * 0.06, rx = s * 0.065, ry = s * 0.042;
    g.save();
    g.beginPath(); g.ellipse(ex, ey, rx, ry, 0, 0, Math.PI * 2); g.clip();
    g.fillStyle = '#ffffff'; g.fillRect(ex - rx, ey - ry, rx * 2, ry * 2);
    g.fillStyle = '#2d3a4a';
    g.beginPath(); g.arc(ex + p.gazeX * s * 0.3, ey + p.gazeY * s * 0.3, s * 0.026, 0, Math.PI * 2); g.fill();
    const closed = Math.max(0, Math.min(1, lid));
    g.fillStyle = '#e3b48c'; g.fillRect(ex - rx, ey - ry, rx * 2, ry * 2 * closed);
    g.restore();
    g.beginPath(); g.ellipse(ex, ey, rx, ry, 0, 0, Math.PI * 2); g.stroke();
    g.beginPath(); g.moveTo(ex - rx, ey - ry * (2.2 - open * 0.2)); g.lineTo(ex + rx, ey - ry * (2.4 - open * 0.2)); g.stroke(); // brow
  }
  // nose
  g.beginPath(); g.moveTo(0, -s * 0.02); g.lineTo(-s * 0.025, s * 0.07); g.lineTo(s * 0.01, s * 0.075); g.stroke();
  // mouth: the upper lip stays, the lower lip follows the jaw
  const my = s * 0.17, mw = s * (0.11 - open * 0.015), mh = s * 0.005 + open * s * 0.09;
  g.fillStyle = '#7b2f35';
  g.beginPath();
  g.moveTo(-mw, my);
  g.quadraticCurveTo(0, my - s * 0.02, mw, my);
  g.quadraticCurveTo(0, my + mh * 2, -mw, my);
  g.closePath(); g.fill(); g.stroke();
  g.restore();
}
`;
