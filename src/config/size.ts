/** One grammar for sizes on every command line: bytes, or a number with K, M, G or T (powers of 1024). */
const SIZE = /^([0-9]+)([KMGT]?)$/i;

/** Bytes, or undefined when `text` is not a size. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * 1024 ** 'BKMGT'.indexOf((m[2] || 'B').toUpperCase());
}
