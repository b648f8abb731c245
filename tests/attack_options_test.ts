// Attacks on options: getters that change their answer between reads (TOCTOU). Run in a child
// with a bounded time: before the fix a sync wait hung.
import assert from "node:assert/strict";
import { fixture, ipcTest, runDeno } from "./helpers.ts";

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
