/**
 * Spawn latency: starting /bin/true and waiting for it, with this library's `spawn()`
 * (posix_spawn) against `Deno.Command` (the baseline). Target: no slower than the baseline.
 *
 * Run: deno task bench bench/spawn_bench.ts
 *
 * @module
 */

import { spawn } from "../mod.ts";

Deno.bench({
  group: "spawn /bin/true + wait",
  name: "Deno.Command",
  baseline: true,
  async fn() {
    await new Deno.Command("/bin/true", { stdin: "null", stdout: "null", stderr: "null" })
      .spawn().status;
  },
});

Deno.bench({
  group: "spawn /bin/true + wait",
  name: "spawn() (posix_spawn)",
  async fn() {
    await spawn("/bin/true", { stdin: "null", stdout: "null", stderr: "null" }).status;
  },
});

Deno.bench({
  group: "spawn /bin/true + wait",
  name: "spawn() with dieWithParent (setpriv + sh trampolines)",
  async fn() {
    await spawn("/bin/true", { stdin: "null", stdout: "null", stderr: "null", dieWithParent: true })
      .status;
  },
});
