import assert from "node:assert/strict";
import { isAlive, kill, killGroup } from "../mod.ts";
import { fixture } from "./helpers.ts";

/** Whether this process may make a PID namespace (root with unshare): kill(-1) stays inside. */
function canUnsharePid(): boolean {
  try {
    return new Deno.Command("unshare", { args: ["--pid", "--fork", "true"], stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test(
  "kill(2 ** 32 - 1) in a warm loop always throws RangeError and never signals every process",
  async () => {
    // SIGTERM inside a PID namespace of its own, where even a kill(-1) could reach only the
    // child's processes; elsewhere SIGWINCH, which every other process ignores.
    const contained = canUnsharePid();
    const signal = contained ? "SIGTERM" : "SIGWINCH";
    const deno = [Deno.execPath(), "run", "--allow-ffi", "--allow-run", fixture("kill_warm.ts")];
    const command = contained ? ["unshare", "--pid", "--fork", "--kill-child", ...deno] : deno;
    const child = new Deno.Command(command[0]!, {
      args: [...command.slice(1), signal],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const output = await child.output();
    clearTimeout(timer);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.deepEqual(result.other, []);
    assert.equal(result.rangeErrors, 2000);
    assert.equal(result.calls, 2000);
    assert.equal(result.sentinelAlive, true, `a stray ${signal} reached the sentinel`);
  },
);

Deno.test("killGroup() refuses groups 0 and 1 and numbers that wrap to them, naming the rule", () => {
  // Signal 0 only probes, so even a regression here would send nothing.
  for (const pgid of [0, 1, -1, 2 ** 32 - 1, 2 ** 32 + 1, 2 ** 31, 1.5, NaN, Infinity]) {
    assert.throws(() => killGroup(pgid, 0), RangeError, "process group");
  }
  assert.throws(() => killGroup(1, 0), RangeError, "1 stands for every process");
  assert.throws(() => killGroup("7" as unknown as number, 0), TypeError);
});

Deno.test("kill() and isAlive() take pids from 1 to 2^31 - 1 only", () => {
  for (const pid of [0, -1, 2 ** 31, 2 ** 32 - 1, 2 ** 32 + Deno.pid, 2 ** 53, NaN, -Infinity]) {
    assert.throws(() => kill(pid, 0), RangeError, "process id");
    assert.throws(() => isAlive(pid), RangeError, "process id");
  }
  assert.throws(() => isAlive(`${Deno.pid}` as unknown as number), TypeError);
  assert.equal(isAlive(Deno.pid), true);
  assert.equal(isAlive(2 ** 31 - 1), false);
});
