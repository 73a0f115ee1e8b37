// Small helpers the benchmarks share for their figures.

/** The median of `xs` (numbers; the mean of the two middle ones for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** `x` rounded, with thousands separators (en-US): 12,345. */
export function fmt(x) {
  return Math.round(x).toLocaleString("en-US");
}
