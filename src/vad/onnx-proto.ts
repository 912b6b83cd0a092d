/**
 * The minimal subset of onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto) needed to
 * decode, edit and re-encode an ONNX model with protobufjs reflection — used by model-rewrite.ts.
 *
 * Every field that can occur in a model is declared (protobufjs drops undeclared fields on decode, and
 * a re-encoded model must lose nothing). Messages we never look inside (TypeProto, SparseTensorProto,
 * TrainingInfoProto, FunctionProto, …) are declared as `bytes`: a length-delimited embedded message
 * decodes to its raw bytes and re-encodes unchanged, so they round-trip without being described.
 * Field numbers are those of the public ONNX spec (IR version 10).
 */
import protobuf from 'protobufjs';

const bytes = (id: number, rule?: 'repeated'): { id: number; type: string; rule?: 'repeated' } =>
  rule === undefined ? { id, type: 'bytes' } : { id, type: 'bytes', rule };

const ONNX_JSON = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: { fields: { key: { id: 1, type: 'string' }, value: { id: 2, type: 'string' } } },
        OperatorSetIdProto: { fields: { domain: { id: 1, type: 'string' }, version: { id: 2, type: 'int64' } } },
        TensorProto: {
          fields: {
            dims: { id: 1, type: 'int64', rule: 'repeated' },
            dataType: { id: 2, type: 'int32' },
            segment: bytes(3),
            floatData: { id: 4, type: 'float', rule: 'repeated' },
            int32Data: { id: 5, type: 'int32', rule: 'repeated' },
            stringData: { id: 6, type: 'bytes', rule: 'repeated' },
            int64Data: { id: 7, type: 'int64', rule: 'repeated' },
            name: { id: 8, type: 'string' },
            rawData: { id: 9, type: 'bytes' },
            doubleData: { id: 10, type: 'double', rule: 'repeated' },
            uint64Data: { id: 11, type: 'uint64', rule: 'repeated' },
            docString: { id: 12, type: 'string' },
            externalData: { id: 13, type: 'StringStringEntryProto', rule: 'repeated' },
            dataLocation: { id: 14, type: 'int32' },
            metadataProps: { id: 16, type: 'StringStringEntryProto', rule: 'repeated' },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { id: 1, type: 'string' },
            type: bytes(2), // TypeProto, kept opaque
            docString: { id: 3, type: 'string' },
            metadataProps: { id: 4, type: 'StringStringEntryProto', rule: 'repeated' },
          },
        },
        AttributeProto: {
          fields: {
            name: { id: 1, type: 'string' },
            f: { id: 2, type: 'float' },
            i: { id: 3, type: 'int64' },
            s: { id: 4, type: 'bytes' },
            t: { id: 5, type: 'TensorProto' },
            g: { id: 6, type: 'GraphProto' },
            floats: { id: 7, type: 'float', rule: 'repeated' },
            ints: { id: 8, type: 'int64', rule: 'repeated' },
            strings: { id: 9, type: 'bytes', rule: 'repeated' },
            tensors: { id: 10, type: 'TensorProto', rule: 'repeated' },
            graphs: { id: 11, type: 'GraphProto', rule: 'repeated' },
            docString: { id: 13, type: 'string' },
            tp: bytes(14), // TypeProto
            typeProtos: bytes(15, 'repeated'),
            type: { id: 20, type: 'int32' }, // AttributeProto.AttributeType
            refAttrName: { id: 21, type: 'string' },
            sparseTensor: bytes(22),
            sparseTensors: bytes(23, 'repeated'),
          },
        },
        NodeProto: {
          fields: {
            input: { id: 1, type: 'string', rule: 'repeated' },
            output: { id: 2, type: 'string', rule: 'repeated' },
            name: { id: 3, type: 'string' },
            opType: { id: 4, type: 'string' },
            attribute: { id: 5, type: 'AttributeProto', rule: 'repeated' },
            docString: { id: 6, type: 'string' },
            domain: { id: 7, type: 'string' },
            overload: { id: 8, type: 'string' },
            metadataProps: { id: 9, type: 'StringStringEntryProto', rule: 'repeated' },
          },
        },
        GraphProto: {
          fields: {
            node: { id: 1, type: 'NodeProto', rule: 'repeated' },
            name: { id: 2, type: 'string' },
            initializer: { id: 5, type: 'TensorProto', rule: 'repeated' },
            docString: { id: 10, type: 'string' },
            input: { id: 11, type: 'ValueInfoProto', rule: 'repeated' },
            output: { id: 12, type: 'ValueInfoProto', rule: 'repeated' },
            valueInfo: { id: 13, type: 'ValueInfoProto', rule: 'repeated' },
            quantizationAnnotation: bytes(14, 'repeated'),
            sparseInitializer: bytes(15, 'repeated'),
            metadataProps: { id: 16, type: 'StringStringEntryProto', rule: 'repeated' },
          },
        },
        ModelProto: {
          fields: {
            irVersion: { id: 1, type: 'int64' },
            producerName: { id: 2, type: 'string' },
            producerVersion: { id: 3, type: 'string' },
            domain: { id: 4, type: 'string' },
            modelVersion: { id: 5, type: 'int64' },
            docString: { id: 6, type: 'string' },
            graph: { id: 7, type: 'GraphProto' },
            opsetImport: { id: 8, type: 'OperatorSetIdProto', rule: 'repeated' },
            metadataProps: { id: 14, type: 'StringStringEntryProto', rule: 'repeated' },
            trainingInfo: bytes(20, 'repeated'),
            functions: bytes(25, 'repeated'),
            configuration: bytes(26, 'repeated'),
          },
        },
      },
    },
  },
};

/** TensorProto.DataType values used here. */
export const OnnxDataType = { FLOAT: 1, INT64: 7 } as const;
/** AttributeProto.AttributeType values used here. */
export const OnnxAttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, INTS: 7 } as const;

export interface OnnxTensor {
  dims: Array<number | protobuf.Long>;
  dataType: number;
  name: string;
  rawData?: Uint8Array;
  floatData?: number[];
  int64Data?: Array<number | protobuf.Long>;
  [field: string]: unknown;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  i?: number | protobuf.Long;
  f?: number;
  ints?: Array<number | protobuf.Long>;
  t?: OnnxTensor;
  g?: OnnxGraph;
  graphs?: OnnxGraph[];
  [field: string]: unknown;
}

export interface OnnxNode {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain: string;
  attribute: OnnxAttribute[];
  [field: string]: unknown;
}

export interface OnnxValueInfo {
  name: string;
  [field: string]: unknown;
}

export interface OnnxGraph {
  node: OnnxNode[];
  name: string;
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  valueInfo: OnnxValueInfo[];
  [field: string]: unknown;
}

export interface OnnxModel {
  graph: OnnxGraph;
  opsetImport: Array<{ domain: string; version: number | protobuf.Long }>;
  [field: string]: unknown;
}

let modelType: protobuf.Type | undefined;

function type(): protobuf.Type {
  modelType ??= protobuf.Root.fromJSON(ONNX_JSON).lookupType('onnx.ModelProto');
  return modelType;
}

/**
 * Decodes a serialized ModelProto. The result is protobufjs message objects: repeated fields are
 * arrays (possibly the shared empty default — replace, do not push), 64-bit integers are Long or number.
 */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModel {
  return type().decode(bytes) as unknown as OnnxModel;
}

/** Encodes a (possibly edited) model back to bytes for `InferenceSession.create(buffer)`. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  return type().encode(model as unknown as protobuf.Message).finish();
}
