/**
 * Dutch mobile numbers for one test file, each new: `+316` + the file's own three-digit block + this process's two
 * digits + a running three-digit count, so files and parallel runs never share a number (a verification per number).
 */
export function phoneSequence(block: string): () => string {
  let count = 0;
  return () => `+316${block}${String(process.pid % 100).padStart(2, "0")}${String(++count).padStart(3, "0")}`;
}
