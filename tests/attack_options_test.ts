// Attacks on options: getters that change their answer between reads (TOCTOU). Run in a child
// with a bounded time: before the fix a sync wait hung.
import assert from "node:assert/strict";
import { Channel, spawn } from "../mod.ts";
import { fixture, ipcTest, runDeno, uniqueName } from "./helpers.ts";

ipcTest(
  "waits read their options once: a timeout getter that answers 100 and then NaN, a string, " +
    "-1 or undefined still ends the wait after 100 ms",
  async () => {
    const output = await runDeno(fixture("attack_options.ts"), [], {
      flags: ["--allow-ffi"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, `${output.signal} ${output.stderr}`);
    const lines = output.stdout.trim().split("\n");
    assert.equal(lines.length, 44, output.stdout);
    for (const line of lines) assert.match(line, / TimedOut bounded$/);
  },
);

/** An object whose `key` answers `first` at the first read and `later` after. */
function shifting(key: string, first: unknown, later: unknown): Record<string, unknown> {
  let reads = 0;
  return Object.defineProperty({}, key, {
    get: () => (reads++ === 0 ? first : later),
    enumerable: true,
  });
}

ipcTest("Channel.create() reads each option once: a name that appears at the second read", () => {
  // Before: an anonymous channel was made (first read), and marked as owning its name (second
  // read): close() then threw "Cannot unlink anonymous shared memory" and left its mapping.
  const options = shifting("name", undefined, uniqueName("shifty"));
  const channel = Channel.create(options as never);
  assert.equal(channel.name, null);
  channel.close();
});

ipcTest("spawn() reads each option once: a cwd that is a URL, then undefined", async () => {
  // Before: "Cannot read properties of undefined (reading 'pathname')", an engine error.
  const child = spawn("true", shifting("cwd", new URL("file:///tmp"), undefined) as never);
  assert.equal((await child.status).success, true);
});
