/**
 * A small ONNX graph builder over the official protobuf schema (`onnx-proto`, the compiled
 * onnx.proto of ONNX 1.10, IR version 8): named inputs and outputs with symbolic dimensions,
 * initializers stored as little-endian raw data, nodes with typed attributes, and helpers for
 * the few operators whose signature changed between opsets (axes moved from attributes to
 * inputs: ReduceSum and Unsqueeze/Squeeze at opset 13, the other reductions at 18).
 *
 * Names are unique by construction: each node output is `<scope>/<op>_<n>`, so a graph reads
 * like the module tree it came from (`encoder.layer.0.attention/MatMul_12`) in Netron.
 * Spec: https://onnx.ai/onnx/repo-docs/IR.html and https://onnx.ai/onnx/operators/.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const MIN_OPSET = 13;
/** onnxruntime's contrib operator domain. */
export const CONTRIB_DOMAIN = 'com.microsoft';
/** The newest default-domain opset the builder's operator choices are written against. */
export const MAX_OPSET = 20;
/** The IR version released with each opset: 8 up to opset 18 (ONNX 1.10–1.13), 9 for 19–20 (ONNX 1.14–1.15). */
function irVersionFor(opset: number): number {
  return opset <= 18 ? 8 : 9;
}

export type ElementType = 'float32' | 'int64' | 'int8' | 'uint8' | 'int32';

const DATA_TYPE: Record<ElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
  int32: onnx.TensorProto.DataType.INT32,
};

export type TensorData = Float32Array | BigInt64Array | Int8Array | Uint8Array | Int32Array;

function elementTypeOf(data: TensorData): ElementType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  return 'int32';
}

/** A dimension: a fixed size, or a name for a size chosen at run time ('batch', 'sequence'). */
export type Dim = number | string;

export type AttributeValue = number | number[] | string | { float: number } | { floats: number[] };

export class OnnxGraphBuilder {
  readonly #nodes: onnxProto.onnx.INodeProto[] = [];
  readonly #initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly #inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly #outputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly #names = new Set<string>();
  readonly #constants = new Map<string, string>();
  #counter = 0;
  #scope = '';
  /** Whether a node uses onnxruntime's contrib domain (`contrib`): the model then imports it. */
  #usesContrib = false;
  /** Bytes of initializer data so far (the model file is about this big). */
  initializerBytes = 0;

  constructor(readonly opset: number) {
    if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
      throw new Error(`opset ${opset} is not supported; expected an integer from ${MIN_OPSET} to ${MAX_OPSET}`);
    }
  }

  /** Runs `build` with node names prefixed by `scope` (nested scopes join with '.'). */
  scoped<T>(scope: string, build: () => T): T {
    const outer = this.#scope;
    this.#scope = outer === '' ? scope : `${outer}.${scope}`;
    try {
      return build();
    } finally {
      this.#scope = outer;
    }
  }

  input(name: string, type: ElementType, dims: readonly Dim[]): string {
    this.#claim(name);
    this.#inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Marks `value` as a graph output named `name` (through an Identity when the names differ). */
  output(value: string, name: string, type: ElementType, dims: readonly Dim[]): void {
    if (value !== name) {
      this.#claim(name);
      this.#nodes.push({ opType: 'Identity', input: [value], output: [name], name: `${name}/Identity` });
    }
    this.#outputs.push(valueInfo(name, type, dims));
  }

  /** A named weight; the name is kept as given (e.g. a module's parameter name), so it must be unique. */
  initializer(name: string, data: TensorData, dims: readonly number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims.join(', ')}]`);
    this.#claim(name);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(); // little-endian on every platform Node runs on
    this.#initializers.push({ name, dims: [...dims], dataType: DATA_TYPE[elementTypeOf(data)], rawData: bytes });
    this.initializerBytes += bytes.length;
    return name;
  }

  /** A small constant, shared by every node that uses the same values. */
  constant(data: TensorData, dims: readonly number[] = [data.length]): string {
    const key = `${elementTypeOf(data)}[${dims.join(',')}]${Array.from(data as ArrayLike<number | bigint>, String).join(',')}`;
    let name = this.#constants.get(key);
    if (name === undefined) {
      name = this.initializer(`const_${this.#constants.size}`, data, dims);
      this.#constants.set(key, name);
    }
    return name;
  }

  int64s(values: readonly number[]): string {
    return this.constant(BigInt64Array.from(values, (v) => BigInt(v)));
  }

  scalarFloat(value: number): string {
    return this.constant(Float32Array.of(value), []);
  }

  scalarInt64(value: number): string {
    return this.constant(BigInt64Array.of(BigInt(value)), []);
  }

  /** Appends a node and returns its output names (`outputs` of them). An empty input name skips an optional input. */
  node(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, outputs = 1): string[] {
    const id = this.#counter++;
    const base = `${this.#scope === '' ? '' : `${this.#scope}/`}${opType}_${id}`;
    const outputNames = Array.from({ length: outputs }, (_, k) => (outputs === 1 ? base : `${base}:${k}`));
    for (const n of outputNames) this.#claim(n);
    this.#nodes.push({
      opType,
      name: base,
      input: [...inputs],
      output: outputNames,
      attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
    });
    return outputNames;
  }

  /**
   * A node of onnxruntime's `com.microsoft` contrib domain (version 1): fused operators that
   * only onnxruntime runs (Attention, SkipLayerNormalization, BiasGelu, EmbedLayerNormalization;
   * https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md).
   */
  contrib(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, outputs = 1): string[] {
    const names = this.node(opType, inputs, attributes, outputs);
    this.#nodes[this.#nodes.length - 1]!.domain = CONTRIB_DOMAIN;
    this.#usesContrib = true;
    return names;
  }

  /** A node with a single output. */
  op(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}): string {
    return this.node(opType, inputs, attributes, 1)[0]!;
  }

  /** Reduce{Sum,Mean,L2,Max} over `axes`: axes are an input from opset 13 for ReduceSum and from 18 for the rest. */
  reduce(opType: 'ReduceSum' | 'ReduceMean' | 'ReduceL2' | 'ReduceMax', x: string, axes: readonly number[], keepdims: boolean): string {
    const axesAsInput = opType === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    return axesAsInput
      ? this.op(opType, [x, this.int64s(axes)], { keepdims: keepdims ? 1 : 0 })
      : this.op(opType, [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
  }

  unsqueeze(x: string, axes: readonly number[]): string {
    return this.op('Unsqueeze', [x, this.int64s(axes)]);
  }

  squeeze(x: string, axes: readonly number[]): string {
    return this.op('Squeeze', [x, this.int64s(axes)]);
  }

  /** A serialised ModelProto. */
  build(meta: { producerVersion: string; docString: string; metadata: Record<string, string>; graphName: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: irVersionFor(this.opset),
      producerName: 'kiln',
      producerVersion: meta.producerVersion,
      docString: meta.docString,
      opsetImport: [{ domain: '', version: this.opset }, ...(this.#usesContrib ? [{ domain: CONTRIB_DOMAIN, version: 1 }] : [])],
      metadataProps: Object.entries(meta.metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: meta.graphName,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  #claim(name: string): void {
    if (this.#names.has(name)) throw new Error(`ONNX graph: the name ${name} is used twice`);
    this.#names.add(name);
  }
}

function valueInfo(name: string, type: ElementType, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer; pass { float: ${value} } for a float attribute`);
    return { name, type: T.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.FLOATS, floats: value.floats };
}
