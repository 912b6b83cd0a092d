/**
 * Load-time rewrite of silero_vad_v5.onnx into a graph made for batched CPU inference.
 *
 * The shipped graph takes `sr` as an input and picks the 16 kHz or 8 kHz network with an `If`; inside
 * the 16 kHz branch, the PyTorch export of LSTMCell/squeeze adds more than a dozen shape-dependent `If`s, and
 * every convolution runs per batch row on a 4-step (or shorter) time axis — tiny GEMMs whose cost is
 * mostly overhead. This module decodes the ModelProto (onnx-proto.ts), takes the 16 kHz branch's
 * weights by name, and emits an equivalent graph with no control flow in which the batch is the M
 * dimension of a few large GEMMs:
 *
 *   input [N,576] --Pad reflect (0,64)--> [N,640] --Reshape--> [N,5,128] chunks
 *     frames [N,4,256] = Concat(chunks[:,0:4], chunks[:,1:5])          (STFT framing, hop 128, win 256)
 *     spec = frames · basisᵀ [256,258] ; mag = sqrt(re² + im²) [N,4,129]
 *   encoder: each Conv1d(k=3, pad 1, stride s) + ReLU over the (at most 4-step) time axis is one dense
 *     Gemm over the flattened [time × channels] row, with the conv kernel laid out as a banded matrix
 *     (516→512, 512→128, 128→64, 64→128); zero taps that only ever see padding are dropped.
 *   LSTMCell: gates = [x, h] · [W_ih; W_hh]ᵀ + (b_ih + b_hh), gate columns reordered to i,f,o | g
 *   decoder: sigmoid(relu(h') · w + b)                     (the mean over a 1-step time axis is identity)
 *
 * Inputs `input` [N,576] and `state` [2,N,128]; outputs `output` [N,1] and `stateN` [2,N,128] — the
 * same contract as the original minus `sr`. Everything is computed from the shipped weights in memory;
 * nothing is downloaded or written to disk. Equivalence with the original model is tested
 * (test/vad/model-rewrite.test.ts, within 1e-5 on the fixtures).
 */
import { VadError } from '../errors.js';
import {
  decodeOnnxModel,
  encodeOnnxModel,
  OnnxAttributeType,
  OnnxDataType,
  type OnnxAttribute,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from './onnx-proto.js';

const WINDOW = 256; // STFT window (16 kHz branch)
const HOP = 128;
const BINS = 129; // WINDOW / 2 + 1
const FRAMES = 4; // (576 + 64 - 256) / 128 + 1
const HIDDEN = 128;
const REFLECT_PAD = 64; // right-side reflect padding of the STFT input
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

interface Weight {
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

function tensorFloats(t: OnnxTensor): Float32Array {
  if (t.dataType !== OnnxDataType.FLOAT) throw new Error(`tensor ${t.name} is not float32`);
  const count = t.dims.reduce<number>((n, d) => n * Number(d), 1);
  if (t.rawData !== undefined && t.rawData.length > 0) {
    const raw = t.rawData;
    if (raw.length !== count * 4) throw new Error(`tensor ${t.name}: ${raw.length} bytes for ${count} floats`);
    if (LITTLE_ENDIAN) return new Float32Array(Uint8Array.from(raw).buffer); // a copy: raw may be a view into a Buffer pool
    const out = new Float32Array(count);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  if (t.floatData !== undefined && t.floatData.length === count) return Float32Array.from(t.floatData);
  throw new Error(`tensor ${t.name} has no data`);
}

/** All `Constant` node tensors and initializers of a graph and its subgraphs, by output name. */
function collectConstants(graph: OnnxGraph, into: Map<string, OnnxTensor>): void {
  for (const t of graph.initializer) into.set(t.name, t);
  for (const node of graph.node) {
    if (node.opType === 'Constant') {
      const value = node.attribute.find((a) => a.name === 'value')?.t;
      const name = node.output[0];
      if (value !== undefined && name !== undefined) into.set(name, value);
    }
    for (const a of node.attribute) {
      if (a.g) collectConstants(a.g, into);
      for (const g of a.graphs ?? []) collectConstants(g, into);
    }
  }
}

/** The weights of the 16 kHz network: the branch whose STFT window is 256 samples. */
function extractWeights(model: OnnxModel): Map<string, Weight> {
  const branches: OnnxGraph[] = [];
  for (const node of model.graph.node) {
    if (node.opType !== 'If') continue;
    for (const a of node.attribute) if (a.g) branches.push(a.g);
  }
  for (const branch of branches) {
    const constants = new Map<string, OnnxTensor>();
    collectConstants(branch, constants);
    const byParam = new Map<string, Weight>();
    for (const [name, t] of constants) {
      // Exported names are `<branch prefix>__<pytorch parameter name>`, e.g. `…Inline_0__encoder.0.reparam_conv.weight`.
      const param = name.slice(name.lastIndexOf('__') + 2);
      if (/\.(weight|bias|weight_ih|weight_hh|bias_ih|bias_hh|forward_basis_buffer)$/.test(param)) {
        byParam.set(param, { dims: t.dims.map(Number), data: tensorFloats(t) });
      }
    }
    const basis = byParam.get('stft.forward_basis_buffer');
    if (basis !== undefined && basis.dims[2] === WINDOW) return byParam;
  }
  throw new Error('no 16 kHz branch (STFT window 256) found in the model');
}

function need(weights: Map<string, Weight>, name: string, dims: readonly number[]): Float32Array {
  const w = weights.get(name);
  if (w === undefined) throw new Error(`weight ${name} not found`);
  if (w.dims.length !== dims.length || w.dims.some((d, i) => d !== dims[i])) {
    throw new Error(`weight ${name} has shape [${w.dims.join(',')}], expected [${dims.join(',')}]`);
  }
  return w.data;
}

/**
 * A Conv1d (kernel 3, padding 1, `stride`) over `tIn` steps of `cIn` channels as a dense matrix
 * [tIn·cIn, tOut·cOut] acting on rows laid out time-major (t·c + channel), plus the tiled bias.
 */
function bandedConv(
  weight: Float32Array,
  bias: Float32Array,
  cOut: number,
  cIn: number,
  tIn: number,
  stride: number,
): { matrix: Float32Array; bias: Float32Array; tOut: number } {
  const tOut = Math.floor((tIn + 2 - 3) / stride) + 1;
  const cols = tOut * cOut;
  const matrix = new Float32Array(tIn * cIn * cols);
  for (let to = 0; to < tOut; to++) {
    for (let k = 0; k < 3; k++) {
      const ti = to * stride + k - 1;
      if (ti < 0 || ti >= tIn) continue; // a tap that only sees zero padding
      for (let o = 0; o < cOut; o++) {
        for (let c = 0; c < cIn; c++) {
          matrix[(ti * cIn + c) * cols + to * cOut + o] = weight[(o * cIn + c) * 3 + k] as number;
        }
      }
    }
  }
  const tiled = new Float32Array(cols);
  for (let to = 0; to < tOut; to++) tiled.set(bias, to * cOut);
  return { matrix, bias: tiled, tOut };
}

class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  #id = 0;

  floats(name: string, dims: readonly number[], data: Float32Array): string {
    let raw: Uint8Array;
    if (LITTLE_ENDIAN) {
      raw = new Uint8Array(Float32Array.from(data).buffer);
    } else {
      raw = new Uint8Array(data.length * 4);
      const view = new DataView(raw.buffer);
      for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] as number, true);
    }
    this.initializers.push({ name, dims: [...dims], dataType: OnnxDataType.FLOAT, rawData: raw });
    return name;
  }

  ints(name: string, values: readonly number[]): string {
    const raw = new Uint8Array(values.length * 8);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    this.initializers.push({ name, dims: [values.length], dataType: OnnxDataType.INT64, rawData: raw });
    return name;
  }

  op(opType: string, inputs: readonly string[], attributes: OnnxAttribute[] = [], outputs = 1): string[] {
    const id = this.#id++;
    const names = Array.from({ length: outputs }, (_, i) => `vox/${opType}_${id}_${i}`);
    this.nodes.push({ opType, name: `vox/${opType}_${id}`, domain: '', input: [...inputs], output: names, attribute: attributes });
    return names;
  }

  one(opType: string, inputs: readonly string[], attributes: OnnxAttribute[] = []): string {
    return this.op(opType, inputs, attributes)[0] as string;
  }
}

const intAttr = (name: string, i: number): OnnxAttribute => ({ name, type: OnnxAttributeType.INT, i });
const strAttr = (name: string, s: string): OnnxAttribute => ({ name, type: OnnxAttributeType.STRING, s: new TextEncoder().encode(s) });

/**
 * Returns the bytes of the batched-CPU form of a Silero v5 model (see the module comment).
 * Throws `vad_model_missing` if the bytes are not a Silero v5 model this rewrite understands.
 */
export function rewriteSileroV5(original: Uint8Array): Uint8Array {
  try {
    return build(decodeOnnxModel(original));
  } catch (error) {
    throw new VadError('vad_model_missing', `cannot rewrite the Silero model: ${(error as Error).message}`, { cause: error });
  }
}

function build(model: OnnxModel): Uint8Array {
  const w = extractWeights(model);
  const basis = need(w, 'stft.forward_basis_buffer', [2 * BINS, 1, WINDOW]);
  const g = new GraphBuilder();

  // STFT framing and magnitude.
  const padded = g.one('Pad', ['input', g.ints('vox/pads', [0, 0, 0, REFLECT_PAD])], [strAttr('mode', 'reflect')]);
  const chunks = g.one('Reshape', [padded, g.ints('vox/chunk_shape', [0, FRAMES + 1, HOP])]);
  const axis1 = g.ints('vox/axis1', [1]);
  const left = g.one('Slice', [chunks, g.ints('vox/s0', [0]), g.ints('vox/e4', [FRAMES]), axis1]);
  const right = g.one('Slice', [chunks, g.ints('vox/s1', [1]), g.ints('vox/e5', [FRAMES + 1]), axis1]);
  const frames = g.one('Concat', [left, right], [intAttr('axis', 2)]); // [N, 4, 256]
  // [N·4, 256] · [256, 258]: real parts in columns 0..128, imaginary parts in 129..257.
  const basisT = new Float32Array(WINDOW * 2 * BINS);
  for (let f = 0; f < 2 * BINS; f++) for (let s = 0; s < WINDOW; s++) basisT[s * 2 * BINS + f] = basis[f * WINDOW + s] as number;
  const spec = g.one('MatMul', [frames, g.floats('vox/stft_basis_t', [WINDOW, 2 * BINS], basisT)]);
  const [re, im] = g.op('Split', [spec, g.ints('vox/split_bins', [BINS, BINS])], [intAttr('axis', 2)], 2) as [string, string];
  const magnitude = g.one('Sqrt', [g.one('Add', [g.one('Mul', [re, re]), g.one('Mul', [im, im])])]);
  let x = g.one('Reshape', [magnitude, g.ints('vox/flat_mag', [0, FRAMES * BINS])]);

  // Encoder: four Conv1d + ReLU as banded dense Gemms.
  const layers: Array<[number, number, number]> = [
    [HIDDEN, BINS, 1],
    [64, HIDDEN, 2],
    [64, 64, 2],
    [HIDDEN, 64, 1],
  ];
  let steps = FRAMES;
  let width = BINS;
  layers.forEach(([cOut, cIn, stride], i) => {
    if (cIn !== width) throw new Error(`encoder.${i} expects ${cIn} channels, has ${width}`);
    const conv = bandedConv(
      need(w, `encoder.${i}.reparam_conv.weight`, [cOut, cIn, 3]),
      need(w, `encoder.${i}.reparam_conv.bias`, [cOut]),
      cOut,
      cIn,
      steps,
      stride,
    );
    const weight = g.floats(`vox/enc${i}_w`, [steps * cIn, conv.tOut * cOut], conv.matrix);
    const bias = g.floats(`vox/enc${i}_b`, [conv.tOut * cOut], conv.bias);
    x = g.one('Relu', [g.one('Gemm', [x, weight, bias])]);
    steps = conv.tOut;
    width = cOut;
  });
  if (steps !== 1 || width !== HIDDEN) throw new Error('unexpected encoder output shape');

  // LSTMCell. PyTorch gate order is i, f, g, o; columns are reordered to i, f, o | g.
  const wih = need(w, 'decoder.rnn.weight_ih', [4 * HIDDEN, HIDDEN]);
  const whh = need(w, 'decoder.rnn.weight_hh', [4 * HIDDEN, HIDDEN]);
  const bih = need(w, 'decoder.rnn.bias_ih', [4 * HIDDEN]);
  const bhh = need(w, 'decoder.rnn.bias_hh', [4 * HIDDEN]);
  const order = [0, 1, 3, 2]; // new gate slot -> torch gate index
  const lstmW = new Float32Array(2 * HIDDEN * 4 * HIDDEN);
  const lstmB = new Float32Array(4 * HIDDEN);
  order.forEach((gate, slot) => {
    for (let u = 0; u < HIDDEN; u++) {
      const row = gate * HIDDEN + u;
      const col = slot * HIDDEN + u;
      for (let k = 0; k < HIDDEN; k++) {
        lstmW[k * 4 * HIDDEN + col] = wih[row * HIDDEN + k] as number;
        lstmW[(HIDDEN + k) * 4 * HIDDEN + col] = whh[row * HIDDEN + k] as number;
      }
      lstmB[col] = (bih[row] as number) + (bhh[row] as number);
    }
  });
  const h = g.one('Gather', ['state', g.ints('vox/idx0', [0])], [intAttr('axis', 0)]); // [1,N,128]
  const c = g.one('Gather', ['state', g.ints('vox/idx1', [1])], [intAttr('axis', 0)]);
  const rowShape = g.ints('vox/row_shape', [-1, HIDDEN]);
  const xh = g.one('Concat', [x, g.one('Reshape', [h, rowShape])], [intAttr('axis', 1)]);
  const gates = g.one('Gemm', [xh, g.floats('vox/lstm_w', [2 * HIDDEN, 4 * HIDDEN], lstmW), g.floats('vox/lstm_b', [4 * HIDDEN], lstmB)]);
  const [sigPart, tanhPart] = g.op('Split', [gates, g.ints('vox/split_gates', [3 * HIDDEN, HIDDEN])], [intAttr('axis', 1)], 2) as [string, string];
  const [gi, gf, go] = g.op('Split', [g.one('Sigmoid', [sigPart]), g.ints('vox/split3', [HIDDEN, HIDDEN, HIDDEN])], [intAttr('axis', 1)], 3) as [string, string, string];
  const gg = g.one('Tanh', [tanhPart]);
  const cNext = g.one('Add', [g.one('Mul', [gf, g.one('Reshape', [c, rowShape])]), g.one('Mul', [gi, gg])]);
  const hNext = g.one('Mul', [go, g.one('Tanh', [cNext])]);
  const stateN = g.one('Reshape', [g.one('Concat', [hNext, cNext], [intAttr('axis', 0)]), g.ints('vox/state_shape', [2, -1, HIDDEN])]);

  // Decoder: ReLU -> Conv1d(128 -> 1, k=1) -> Sigmoid.
  const decW = need(w, 'decoder.decoder.2.weight', [1, HIDDEN, 1]);
  const decB = need(w, 'decoder.decoder.2.bias', [1]);
  const logit = g.one('Gemm', [g.one('Relu', [hNext]), g.floats('vox/dec_w', [HIDDEN, 1], decW), g.floats('vox/dec_b', [1], decB)]);
  const probability = g.one('Sigmoid', [logit]);
  g.nodes.push({ opType: 'Identity', name: 'vox/output', domain: '', input: [probability], output: ['output'], attribute: [] });
  g.nodes.push({ opType: 'Identity', name: 'vox/stateN', domain: '', input: [stateN], output: ['stateN'], attribute: [] });

  const find = (list: OnnxGraph['input'], name: string): OnnxGraph['input'][number] => {
    const v = list.find((i) => i.name === name);
    if (v === undefined) throw new Error(`the model has no "${name}"`);
    return v;
  };
  const src = model.graph;
  const graph: OnnxGraph = {
    name: 'silero_vad_v5_16k_batched',
    node: g.nodes,
    initializer: g.initializers,
    input: [find(src.input, 'input'), find(src.input, 'state')],
    output: [find(src.output, 'output'), find(src.output, 'stateN')],
    valueInfo: [],
  };
  const out: OnnxModel = {
    irVersion: model['irVersion'] ?? 8,
    producerName: 'voxstate',
    graph,
    opsetImport: [{ domain: '', version: 16 }],
  };
  return encodeOnnxModel(out);
}
