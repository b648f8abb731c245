// Attacks on SharedMap: many writer processes on one entry, one of them SIGKILLed at random
// moments, and a hostile process that corrupts the segment.
import assert from "node:assert/strict";
import { codecs, SharedMap, spawnDeno } from "../mod.ts";
import { fixture, ipcTest, runDeno } from "./helpers.ts";

type Tally = { total: number; by: Record<string, number> };

ipcTest(
  "4 processes update() one entry while 5 others are SIGKILLed in turn mid-run: every survivor's count is " +
    "exact and the total agrees with the parts",
  async () => {
    using map = SharedMap.create<unknown>({ codec: codecs.json, capacity: 4 });
    const start = (id: string, count: number) => {
      const child = spawnDeno(fixture("attack_map.ts"), {
        args: ["tally", id, String(count)],
        permissions: { ffi: true },
        fds: { 3: map },
        stdout: "piped",
      });
      const lines = child.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
      return { child, lines };
    };
    const COUNT = 3000;
    const workers = ["a", "b", "c", "d"].map((id) => start(id, COUNT));
    // Victims, one after another, each SIGKILLed at a moment of its updates, maybe under the lock.
    for (let round = 0; round < 5; round++) {
      const victim = start(`victim${round}`, 0);
      assert.equal((await victim.lines.read()).value?.trim(), "ready");
      await new Promise((resolve) => setTimeout(resolve, 50 + 20 * round));
      victim.child.kill("SIGKILL");
      assert.equal((await victim.child.status).state, "signaled");
      while (!(await victim.lines.read()).done); // to its end: the pipe closes
    }
    for (const { child, lines } of workers) {
      let out = "";
      for (let chunk; !(chunk = await lines.read()).done;) out += chunk.value;
      assert.deepEqual(out.trim().split("\n"), ["ready", "done"]);
      assert.equal((await child.status).success, true);
    }
    const tally = map.get("tally") as Tally;
    for (const id of ["a", "b", "c", "d"]) assert.equal(tally.by[id], COUNT, `writer ${id}`);
    const parts = Object.values(tally.by).reduce((sum, n) => sum + n, 0);
    assert.equal(tally.total, parts, JSON.stringify(tally));
    const killed = Object.keys(tally.by).filter((id) => id.startsWith("victim"));
    assert.ok(killed.length > 0, "the victims updated before they were killed");
  },
);

ipcTest(
  "a hostile process overwriting the map's header, lock and slots with edge values gets its " +
    "victim only typed errors: no crash, no hang, nothing written outside the segment",
  async () => {
    for (const seed of [1, 2, 4]) {
      const output = await runDeno(fixture("attack_map_corrupt.ts"), [String(seed), "400"], {
        flags: ["--allow-ffi", "--allow-read", "--allow-write"],
        timeout: 60_000,
      });
      assert.equal(output.code, 0, `seed ${seed}: ${output.signal} ${output.stderr}`);
      assert.match(output.stdout, /^calls 3200 errors /);
    }
  },
);

ipcTest("a huge key is refused without being encoded: no copy of its gigabytes", () => {
  using map = SharedMap.create({ capacity: 4 });
  const key = "€".repeat(2 ** 24); // 48 MiB of UTF-8
  const encode = TextEncoder.prototype.encode;
  let encoded = 0;
  TextEncoder.prototype.encode = function (this: TextEncoder, input?: string) {
    encoded += input?.length ?? 0;
    return encode.call(this, input);
  };
  try {
    // Before: the RangeError's message encoded the whole key to count its bytes (for a key of
    // 2^29 characters: 12 s and 2.6 GB).
    for (const call of [() => map.get(key), () => map.set(key, new Uint8Array(1))]) {
      assert.throws(call, RangeError);
    }
  } finally {
    TextEncoder.prototype.encode = encode;
  }
  assert.equal(encoded, 0);
});
