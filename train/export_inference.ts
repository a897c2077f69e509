/**
 * Export of a forward-only (inference) model: the nodes that chosen outputs
 * need, with the parameters written in as initializers, for onnxruntime,
 * Python or any ONNX runtime outside medsyn.
 *
 * @module
 */
import type { FloatArray } from './dtype.js';
import type { Graph, Value } from './graph.js';

/** Options of {@link exportInference}. */
export interface ExportInferenceOptions {
  /** Parameter values by name. @default the graph's initial values */
  parameters?: ReadonlyMap<string, FloatArray>;
  /** Key/value pairs for the model's metadata (training step, data set, licence). @default {} */
  metadata?: Readonly<Record<string, string>>;
  /** The model's description. @default none */
  docString?: string;
}

/**
 * The ONNX bytes of an inference model computing `outputs` (named as given)
 * from the inputs they need. No backward or optimizer nodes are written.
 *
 * @throws {MedsynError} `MEDSYN_ERR_BAD_GRAPH` for no outputs, outputs of another graph or an output name
 *   taken by another value; `MEDSYN_ERR_SHAPE_MISMATCH` for parameter values of the wrong size
 * @example
 * ```ts
 * await writeFile('image_head.onnx', exportInference(g, { embedding: z }, { parameters: step.parameters() }));
 * ```
 */
export function exportInference(graph: Graph, outputs: Readonly<Record<string, Value>>, options: ExportInferenceOptions = {}): Uint8Array {
  return graph.toOnnx(outputs, {
    parameters: 'initializers',
    values: options.parameters,
    metadata: options.metadata,
    docString: options.docString,
  });
}
