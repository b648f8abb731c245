/**
 * The shell pipeline `grep PATTERN | sort | wc -l`, built from `pipe()` and `spawn()`.
 *
 * Each command is a real process started with posix_spawn; the pipes between them are made
 * here, and every process gets exactly the ends it needs (the parent closes its copies, or
 * `wc` would never see the end of its input). The parent feeds `grep` from a generated word
 * list and reads the count from `wc`, then checks it against the same count in JavaScript.
 *
 * Run: deno run --allow-ffi --allow-run examples/pipeline.ts [PATTERN]
 *
 * @module
 */

import { pipe, spawn } from "../mod.ts";

const pattern = Deno.args[0] ?? "ab";
const words = Array.from({ length: 50_000 }, (_, i) => (i * 7919).toString(36));

using grepToSort = pipe();
using sortToWc = pipe();
await using grep = spawn("grep", {
  args: ["-e", pattern],
  stdin: "piped",
  stdout: grepToSort.writer,
});
await using sort = spawn("sort", { stdin: grepToSort.reader, stdout: sortToWc.writer });
await using wc = spawn("wc", { args: ["-l"], stdin: sortToWc.reader, stdout: "piped" });
// The children hold their own copies now; the parent's must go, so that each reader sees
// the end of its input when the writer before it exits.
for (const end of [grepToSort.writer, grepToSort.reader, sortToWc.writer, sortToWc.reader]) {
  end.close();
}

const input = new TextEncoder().encode(words.join("\n") + "\n");
const [, output] = await Promise.all([
  grep.stdin!.write(input).then(() => grep.stdin!.close()),
  wc.output(),
]);
const statuses = await Promise.all([grep.status, sort.status]);
const counted = Number(new TextDecoder().decode(output.stdout).trim());
const expected = words.filter((word) => word.includes(pattern)).length;

console.log(`grep ${grep.pid} | sort ${sort.pid} | wc ${wc.pid}: ${words.length} words in`);
console.log(`grep -e ${pattern} | sort | wc -l counted ${counted} lines`);
console.log(`JavaScript counts ${expected}: ${counted === expected ? "the same" : "DIFFERENT"}`);
const ends = [...statuses, output.status].map((s) => s.state === "exited" ? s.code : s.state);
console.log(`exit codes: ${ends.join(", ")}`);
