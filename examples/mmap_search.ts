/**
 * Searching a large file through a memory mapping, without reading it into the heap.
 *
 * `mapFile` maps the file read-only: its bytes appear as a Uint8Array whose pages the kernel
 * brings in from the page cache as the search touches them. Nothing is copied into
 * JavaScript memory, so a file of gigabytes costs no heap. Given no file, the example writes
 * a temporary one of SIZE MiB with the word planted at known places, and removes it after.
 *
 * Run: deno run --allow-ffi --allow-read --allow-write examples/mmap_search.ts [WORD] [FILE|SIZE]
 *
 * @module
 */

import { mapFile } from "../mod.ts";

const word = new TextEncoder().encode(Deno.args[0] ?? "posix-ipc");
const given = Deno.args[1] !== undefined && !/^\d+$/.test(Deno.args[1]) ? Deno.args[1] : undefined;
const path = given ?? await makeFile(Number(Deno.args[1] ?? 64));

/** Every offset where `needle` starts in `haystack`. */
function search(haystack: Uint8Array, needle: Uint8Array): number[] {
  const found: number[] = [];
  for (let at = haystack.indexOf(needle[0]!); at >= 0; at = haystack.indexOf(needle[0]!, at + 1)) {
    let i = 1;
    while (i < needle.length && haystack[at + i] === needle[i]) i++;
    if (i === needle.length) found.push(at);
  }
  return found;
}

/** A file of SIZE MiB of filler text, with the word planted once in every MiB. */
async function makeFile(mib: number): Promise<string> {
  const file = await Deno.makeTempFile({ prefix: "posix-ipc-search-" });
  const line = new TextEncoder().encode("lorem ipsum dolor sit amet consectetur adipiscing\n");
  const chunk = new Uint8Array(1 << 20);
  for (let at = 0; at < chunk.length; at += line.length) {
    chunk.set(line.subarray(0, chunk.length - at), at);
  }
  using out = await Deno.open(file, { write: true });
  for (let i = 0; i < mib; i++) {
    const copy = chunk.slice();
    copy.set(word, 1000 + i * 997); // somewhere else in each MiB
    await out.write(copy);
  }
  return file;
}

try {
  const heapBefore = Deno.memoryUsage().heapUsed;
  const started = performance.now();
  using mapping = mapFile(path); // read-only, nothing read yet
  const offsets = search(mapping.bytes, word);
  const ms = performance.now() - started;
  const heapGrowth = (Deno.memoryUsage().heapUsed - heapBefore) / (1 << 20);
  const mib = mapping.length / (1 << 20);
  console.log(
    `searched ${mib.toFixed(0)} MiB of ${given ?? "a generated file"} for "${
      new TextDecoder().decode(word)
    }"`,
  );
  console.log(`found ${offsets.length} matches; the first at ${offsets.slice(0, 3).join(", ")}`);
  console.log(
    `${ms.toFixed(0)} ms (${(mib / (ms / 1000)).toFixed(0)} MiB/s), heap grew by ${
      heapGrowth.toFixed(1)
    } MiB`,
  );
} finally {
  if (!given) await Deno.remove(path);
}
