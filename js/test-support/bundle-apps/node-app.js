// A serverless-style single-file Node bundle (esbuild --platform=node):
// the wasm inlined as bytes with --loader:.wasm=binary.
import { defineJob, open } from "durq";
import wasm from "durq/wasm";

const hello = defineJob({ name: "hello", run: async (step, input) => step.run("greet", () => `hello ${input.name}`) });
const db = await open({ memory: true }, { wasm });
const { id } = await db.enqueue(hello, { name: "node bundle" });
const processed = await db.worker({ jobs: [hello] }).processUntilIdle();
const run = await db.getRun(id);
console.log(JSON.stringify({ processed, status: run.status, output: run.output }));
await db.close();
