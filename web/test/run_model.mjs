// Runs a TF.js export of the network in Node over raw frames, keeping the recurrent state, the way
// RVM's TF.js example calls it (executeAsync with the inputs and outputs by name).
//
//   node web/test/run_model.mjs JOB.json
//
// JOB.json: {"model": folder with model.json, "backend": "cpu" | "wasm",
//            "runs": [{"frames": N, "height": H, "width": W, "ratio": R,
//                      "input": raw float32 NHWC frames (N*H*W*3),
//                      "output": written per frame: pha (H*W) then fgr (H*W*3), float32}]}
// Prints one JSON line: {"backend", "runs": [{"ms": [per frame], "state": [r1o..r4o shapes]}]}.
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);
const OUTPUTS = ['fgr', 'pha', 'r1o', 'r2o', 'r3o', 'r4o'];

/** A tf.io handler that reads a graph model folder from disk. */
function folderHandler(folder) {
  return {
    async load() {
      const json = JSON.parse(await readFile(join(folder, 'model.json'), 'utf8'));
      const specs = [];
      const buffers = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const path of group.paths) buffers.push(await readFile(join(folder, path)));
      }
      const data = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      };
    },
  };
}

async function matte(model, run) {
  const raw = await readFile(run.input);
  const frames = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const plane = run.height * run.width;
  const out = new Float32Array(run.frames * plane * 4);
  // On the first frame the state is four scalar zeros, as in RVM's example.
  let rec = [0, 0, 0, 0].map(() => tf.scalar(0));
  const ratio = tf.scalar(run.ratio);
  const ms = [];
  for (let i = 0; i < run.frames; i++) {
    const pixels = frames.subarray(i * plane * 3, (i + 1) * plane * 3);
    const src = tf.tensor4d(pixels, [1, run.height, run.width, 3]);
    const start = performance.now();
    const [fgr, pha, ...state] = await model.executeAsync(
      { src, r1i: rec[0], r2i: rec[1], r3i: rec[2], r4i: rec[3], downsample_ratio: ratio },
      OUTPUTS,
    );
    out.set(await pha.data(), i * plane * 4);
    out.set(await fgr.data(), i * plane * 4 + plane);
    ms.push(performance.now() - start);
    tf.dispose([src, fgr, pha, ...rec]);
    rec = state;
  }
  await writeFile(run.output, Buffer.from(out.buffer));
  const shapes = rec.map((r) => r.shape);
  tf.dispose([...rec, ratio]);
  return { ms, state: shapes };
}

const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
if (job.backend === 'wasm') {
  const wasm = require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm');
  setWasmPaths(`${dirname(wasm)}/`);
}
if (!(await tf.setBackend(job.backend))) throw new Error(`backend ${job.backend} did not start`);
const model = await tf.loadGraphModel(folderHandler(job.model));
const runs = [];
for (const run of job.runs) runs.push(await matte(model, run));
console.log(JSON.stringify({ backend: tf.getBackend(), runs }));
