// SPDX-License-Identifier: MIT
// ONNX Runtime (onnxruntime-node, CPU) latency of one ONNX model, batch 1.
//   node bench/peers-ort.mjs MODEL.onnx THREADS ITERATIONS WARMUP
// Prints one JSON object: {"median_us": ..., "p99_us": ..., "min_us": ...}.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const ort = require("onnxruntime-node");

const [file, threads, iterations, warmup] = process.argv.slice(2);
const session = await ort.InferenceSession.create(file, {
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
});
const meta = session.inputNames[0];
// The first dimension is the dynamic batch; the exporter fixes the rest.
const dims = JSON.parse(process.env.GEARBOX_INPUT_SHAPE);
const data = new Float32Array(dims.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
const feeds = { [meta]: new ort.Tensor("float32", data, [1, ...dims]) };
for (let i = 0; i < Number(warmup); i++) await session.run(feeds);
const t = [];
for (let i = 0; i < Number(iterations); i++) {
  const t0 = process.hrtime.bigint();
  await session.run(feeds);
  t.push(Number(process.hrtime.bigint() - t0) / 1000);
}
t.sort((a, b) => a - b);
const q = (p) => t[Math.max(0, Math.ceil(p * t.length) - 1)];
console.log(JSON.stringify({ min_us: t[0], median_us: q(0.5), p99_us: q(0.99) }));
