/**
 * A trained model loaded in onnxruntime-node: the ONNX bytes of the registry plus the feature
 * names it was trained with. One session per model version; inference is single-threaded (2 shared
 * cores; measured: 1 row ~25 µs, 100 rows ~0.5 ms, see ml/README.md).
 */
import { createHash } from "node:crypto";
import type { InferenceSession as Session } from "onnxruntime-node";
import { unknownFeatures } from "./features";

/** Why a model cannot be loaded: the message is what clients read (ml-predictor's 409, 503 and /status). */
export class ModelLoadError extends Error {
  constructor(
    message: string,
    /** onnxruntime's own text, with the source location it starts with: for the log only. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/**
 * onnxruntime's reason for refusing bytes, without the source location and C++ signature its
 * messages start with ("/onnxruntime_src/onnxruntime/core/graph/model.cc:191
 * onnxruntime::Model::Model(onnx::ModelProto&&, ...) Missing opset in the model. ..."): a file path of
 * the library's build that reached any trader through GET /api/ml/status and /predict's 503. A text
 * that still names a source file is not given at all.
 */
export function onnxRuntimeReason(message: string): string {
  let reason = message.trim();
  const located = /^\S*\/\S+:\d+\s+([\s\S]*)$/.exec(reason);
  if (located) {
    reason = located[1];
    // "onnxruntime::common::Status onnxruntime::InferenceSession::Initialize() " and the like.
    const signature = /^[^()]*::[^()]*\((?:[^()]|\([^()]*\))*\)\s*(?:const\s+)?/.exec(reason);
    if (signature) reason = reason.slice(signature[0].length);
  }
  reason = reason.trim();
  return reason === "" || /(?:^|[\s(:])\/[^\s/]+\/\S*/.test(reason) ? "its bytes are not a model this onnxruntime can load" : reason;
}

export interface LoadedModel {
  version: string;
  features: readonly string[];
  /** P(close H bars later > close now) for each row (rows in `features` order). */
  predict(rows: readonly (readonly number[])[]): Promise<Float32Array>;
  close(): Promise<void>;
}

export const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/**
 * Loads ONNX bytes after checking them against the registry's checksum and the feature names
 * against what this code computes (a model trained on features the server cannot compute is
 * refused rather than fed zeros).
 */
export async function loadModel(version: string, onnx: Uint8Array, features: readonly string[], checksum: string): Promise<LoadedModel> {
  const actual = sha256(onnx);
  if (actual !== checksum) throw new ModelLoadError(`model ${version}: artifact checksum ${actual} does not match the registry's ${checksum}`);
  const missing = unknownFeatures(features);
  if (missing.length) throw new ModelLoadError(`model ${version} needs features this server cannot compute: ${missing.join(", ")}`);
  // Loaded on first use: the native add-on costs ~100 ms and memory only where a model is served.
  const ort = (await import("onnxruntime-node")) as typeof import("onnxruntime-node");
  let session: Session;
  try {
    session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: "sequential" });
  } catch (e) {
    throw new ModelLoadError(`model ${version}: the model runtime rejected the artifact: ${onnxRuntimeReason((e as Error).message)}`, (e as Error).message);
  }
  const input = session.inputNames[0];
  if (!session.outputNames.includes("probabilities")) throw new ModelLoadError(`model ${version}: no "probabilities" output`);
  const width = features.length;
  return {
    version,
    features,
    async predict(rows) {
      if (rows.length === 0) return new Float32Array(0);
      const data = new Float32Array(rows.length * width);
      rows.forEach((r, i) => {
        if (r.length !== width) throw new Error(`row ${i} has ${r.length} values, model ${version} takes ${width}`);
        data.set(r, i * width);
      });
      const out = await session.run({ [input]: new ort.Tensor("float32", data, [rows.length, width]) }, ["probabilities"]);
      const probs = out.probabilities.data as Float32Array;
      const up = new Float32Array(rows.length);
      for (let i = 0; i < rows.length; i++) up[i] = probs[i * 2 + 1];
      return up;
    },
    close: () => session.release(),
  };
}
