// Attacks on a Channel handle whose ring was transferred away through a zero-copy view.
import assert from "node:assert/strict";
import { fixture, ipcTest, runDeno } from "./helpers.ts";

ipcTest(
  "a view's buffer transferred away: the handle answers every call, and a pending receive, " +
    "with BadResource; the moved buffer stays safe after close and GC",
  async () => {
    const output = await runDeno(fixture("attack_ring_transfer.ts"), [], {
      flags: ["--allow-ffi", "--v8-flags=--expose-gc"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, `${output.signal} ${output.stderr}`);
    // Before: engine TypeErrors ("Cannot perform Atomics.sub on a detached … ArrayBuffer").
    assert.deepEqual(output.stdout.trim().split("\n"), [
      "pending receive: BadResource",
      "trySend: BadResource",
      "send: BadResource",
      "tryReceive: BadResource",
      "receiveSync: BadResource",
      "tryReceiveInto: BadResource",
      "tryLoan: BadResource",
      "loan: BadResource",
      "fd: BadResource",
      "close: returned",
      "moved buffer: 12288 bytes, safe",
    ]);
  },
);
