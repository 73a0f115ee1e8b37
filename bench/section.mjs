// Rewrites one `<!-- name:start --> ... <!-- name:end -->` section of
// BENCHMARKS.md (appended if missing), for the benchmarks that own one.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const path = join(dirname(fileURLToPath(import.meta.url)), "..", "BENCHMARKS.md");

/** Replaces (or appends) section `name` of BENCHMARKS.md with `section`, which includes its markers. */
export function writeSection(name, section) {
  const re = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`);
  const md = readFileSync(path, "utf8");
  writeFileSync(path, re.test(md) ? md.replace(re, section) : `${md.trimEnd()}\n\n${section}\n`);
}
