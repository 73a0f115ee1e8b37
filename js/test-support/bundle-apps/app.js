// A tiny browser app, bundled by each bundler in js/test/bundlers.test.mjs:
// runs one job in an in-memory database and reports on window.__result.
// `wasmOption()` is each bundler's way to hand durq its wasm (or none).
import { defineJob, open } from "durq";
import { wasmOption } from "./wasm-option.js";

const hello = defineJob({ name: "hello", run: async (step, input) => step.run("greet", () => `hello ${input.name}`) });

(async () => {
  try {
    const db = await open({ memory: true }, wasmOption());
    const { id } = await db.enqueue(hello, { name: "bundler" });
    const processed = await db.worker({ jobs: [hello] }).processUntilIdle();
    const run = await db.getRun(id);
    window.__result = { processed, status: run.status, output: run.output };
    await db.close();
  } catch (e) {
    window.__result = { code: e.code ?? e.name, message: e.message };
  }
})();
