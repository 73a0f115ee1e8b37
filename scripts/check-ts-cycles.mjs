#!/usr/bin/env node
// Fails (exit 1) if the TypeScript modules of js/src import each other in a
// cycle. Layers import downward only: every relative import or re-export
// counts, `import type` included (a type cycle is a layering mistake too).
// Usage: node scripts/check-ts-cycles.mjs [dir]   (default: js/src)

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..", "js", "src"));
const files = (function walk(dir) {
  return readdirSync(dir).flatMap((n) =>
    statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : n.endsWith(".ts") && !n.endsWith(".d.ts") ? [join(dir, n)] : [],
  );
})(root);

/** The modules of js/src that `file` imports (relative specifiers; `./x.js` is `./x.ts`). */
function importsOf(file) {
  const text = readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const specs = [...text.matchAll(/\b(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g)].map(
    (m) => m[1] ?? m[2],
  );
  return specs
    .filter((s) => s.startsWith("."))
    .map((s) => resolve(dirname(file), s.replace(/\.js$/, ".ts")))
    .filter((p) => files.includes(p));
}

const graph = new Map(files.map((f) => [f, importsOf(f)]));
const state = new Map(); // undefined: unvisited, 1: on the stack, 2: done
const stack = [];
const cycles = [];
function visit(f) {
  state.set(f, 1);
  stack.push(f);
  for (const g of graph.get(f)) {
    if (state.get(g) === 1) cycles.push([...stack.slice(stack.indexOf(g)), g]);
    else if (state.get(g) === undefined) visit(g);
  }
  stack.pop();
  state.set(f, 2);
}
for (const f of files) if (state.get(f) === undefined) visit(f);

const name = (f) => relative(root, f);
if (cycles.length > 0) {
  for (const c of cycles) console.error(`import cycle: ${c.map(name).join(" -> ")}`);
  process.exit(1);
}
console.log(`no import cycles among the ${files.length} modules of ${relative(process.cwd(), root) || "."}`);
