import assert from "node:assert/strict";
import {
  isAlive,
  kill,
  killGroup,
  onSignal,
  signalName,
  signalNumber,
  signals,
  spawn,
} from "../mod.ts";
import { fixture, ipcTest, runDeno } from "./helpers.ts";

Deno.test("the signal table: names and numbers both ways, real-time signals included", () => {
  assert.equal(signalNumber("SIGHUP"), 1);
  assert.equal(signalNumber("SIGUSR1"), 10);
  assert.equal(signalNumber("SIGTERM"), 15);
  assert.equal(signalNumber("SIGCHLD"), 17);
  assert.equal(signalNumber("SIGIOT" as "SIGABRT"), 6, "an alias");
  assert.equal(signalNumber(9), 9);
  assert.equal(signalName(9), "SIGKILL");
  assert.equal(signalName(31), "SIGSYS");
  const min = signalNumber("SIGRTMIN");
  const max = signalNumber("SIGRTMAX");
  assert.ok(min >= 32 && max === 64, `${min}..${max}`);
  assert.equal(signalNumber("SIGRTMIN+3"), min + 3);
  assert.equal(signalNumber("SIGRTMAX-2"), max - 2);
  assert.equal(signalName(min + 3), "SIGRTMIN+3");
  assert.equal(signalName(max - 2), "SIGRTMAX-2");
  assert.equal(signalName(min), "SIGRTMIN");
  assert.equal(signalName(max), "SIGRTMAX");
  for (let n = 1; n <= 64; n++) assert.equal(signalNumber(signalName(n)), n, `round trip of ${n}`);
});

Deno.test("unknown signal names are TypeError, impossible numbers RangeError", () => {
  for (const name of ["SIGNOPE", "USR1", "sigterm", "SIGRTMIN-1", "SIGRTMAX+1", ""]) {
    assert.throws(() => signalNumber(name as "SIGINT"), TypeError, name);
  }
  assert.throws(() => signalNumber("SIGRTMIN+99" as "SIGINT"), RangeError);
  for (const number of [0, -1, 65, 1.5, NaN]) {
    assert.throws(() => signalNumber(number), RangeError, String(number));
    assert.throws(() => signalName(number), RangeError, String(number));
  }
  assert.throws(() => signalNumber({} as unknown as number), TypeError);
});

ipcTest("kill() and isAlive(): a process is alive until it is gone", async () => {
  const child = spawn("sleep", { args: ["30"] });
  assert.equal(isAlive(child.pid), true);
  assert.equal(isAlive(1), true, "init exists, whether or not it may be signalled");
  kill(child.pid, "SIGKILL");
  const status = await child.status;
  assert.equal(status.state === "signaled" && status.signal, "SIGKILL");
  assert.equal(isAlive(child.pid), false);
  assert.throws(
    () => kill(child.pid),
    (error: unknown) => error instanceof Deno.errors.NotFound && /ESRCH/.test(String(error)),
  );
});

ipcTest("killGroup() reaches every member of a group", async () => {
  const child = spawn("sh", { args: ["-c", "sleep 30 & wait"], processGroup: true });
  await new Promise((resolve) => setTimeout(resolve, 50));
  killGroup(child.pgid, "SIGKILL");
  const status = await child.status;
  assert.equal(status.state === "signaled" && status.signal, "SIGKILL");
});

Deno.test("pids and pgids of 0 or below are refused: they would reach groups or everyone", () => {
  for (const pid of [0, -1, 1.5]) {
    assert.throws(() => kill(pid), RangeError);
    assert.throws(() => killGroup(pid), RangeError);
    assert.throws(() => isAlive(pid), RangeError);
  }
});

ipcTest("onSignal() calls the handler until disposed", async () => {
  const received: string[] = [];
  const listener = onSignal("SIGUSR1", (signal) => received.push(signal));
  kill(Deno.pid, "SIGUSR1");
  await new Promise((resolve) => setTimeout(resolve, 50));
  listener[Symbol.dispose]();
  listener[Symbol.dispose]();
  assert.deepEqual(received, ["SIGUSR1"]);
  assert.throws(() => onSignal("SIGKILL", () => {}), /SIGKILL and SIGSTOP cannot be caught/);
  assert.throws(() => onSignal("SIGRTMIN+1" as "SIGINT", () => {}), TypeError);
});

ipcTest("signals() yields the signals received, in order, until disposed", async () => {
  using incoming = signals("SIGUSR1", "SIGUSR2");
  // Each signal is sent once the one before it was seen: two kinds pending at once have no
  // order (the kernel delivers the lower number first), and a fixed pause between the two
  // kill() calls was too short under qemu.
  const order = ["SIGUSR2", "SIGUSR1", "SIGUSR2"] as const;
  kill(Deno.pid, order[0]);
  const seen: string[] = [];
  for await (const signal of incoming) {
    seen.push(signal);
    if (seen.length === order.length) break;
    kill(Deno.pid, order[seen.length]!);
  }
  assert.deepEqual(seen, order);
  assert.deepEqual(await incoming.next(), { value: undefined, done: true });
  assert.throws(() => signals(), TypeError);
});

ipcTest(
  "signals(): pending next() calls settle in order, and dispose or return() settles them all",
  async () => {
    const expected: Record<string, string[]> = {
      deliver: [
        '0: {"value":"SIGUSR1","done":false}',
        '1: {"value":"SIGUSR2","done":false}',
        '2: {"value":"SIGUSR1","done":false}',
        'after: {"done":true}',
      ],
      dispose: ['0: {"done":true}', '1: {"done":true}', 'after: {"done":true}'],
      return: [
        '0: {"done":true}',
        '1: {"done":true}',
        'return: {"done":true}',
        'after: {"done":true}',
      ],
    };
    for (const [how, lines] of Object.entries(expected)) {
      const output = await runDeno(fixture("signal_pending.ts"), [how], {
        flags: ["--allow-ffi", "--allow-run"],
        timeout: 10_000,
      });
      assert.equal(output.signal, null, `${how}: the process did not exit`);
      assert.equal(output.code, 0, `${how}: ${output.stderr}`);
      assert.deepEqual(output.stdout.trim().split("\n"), lines, how);
    }
  },
);

ipcTest("signals() with one bad name throws and leaves no listener behind", async () => {
  const output = await runDeno(fixture("signal_pending.ts"), ["invalid"], {
    flags: ["--allow-ffi", "--allow-run"],
    timeout: 10_000,
  });
  assert.equal(output.stdout.trim(), "TypeError");
  assert.equal(output.signal, "SIGUSR1", "SIGUSR1 has its default effect again");
});

Deno.test("prototype keys are no signal names", () => {
  for (const name of ["toString", "__proto__", "constructor", "hasOwnProperty"]) {
    assert.throws(() => signalNumber(name as "SIGINT"), TypeError, name);
    assert.throws(() => onSignal(name as "SIGINT", () => {}), TypeError, name);
    assert.throws(() => signals(name as "SIGINT"), TypeError, name);
  }
});

/** An assert.throws() matcher: an error of `kind` whose message includes `text`. */
function failsWith(kind: new (...args: never[]) => Error, text: string) {
  return (error: unknown) => {
    assert.ok(error instanceof kind, `expected a ${kind.name}, got ${error}`);
    assert.ok(error.message.includes(text), `"${error.message}" lacks "${text}"`);
    return true;
  };
}

Deno.test("hostile signals are TypeErrors or RangeErrors naming the value, never engine errors", () => {
  const hostile = [Object.create(null), Symbol("s"), { toString: null, valueOf: null }, 15n];
  for (const bad of hostile) {
    assert.throws(() => signalNumber(bad), failsWith(TypeError, "give a name such as"));
    assert.throws(() => signalName(bad), failsWith(TypeError, "give a name such as"));
    assert.throws(() => onSignal(bad, () => {}), failsWith(TypeError, "give a name such as"));
    assert.throws(() => signals(bad), failsWith(TypeError, "give a name such as"));
  }
  assert.throws(() => signalNumber(-0), failsWith(RangeError, "signal -0"));
});

Deno.test("onSignal() with a handler that is no function is a TypeError, and listens to nothing", () => {
  for (const bad of [null, undefined, 5, "handler", {}, Object.create(null)]) {
    assert.throws(
      () => onSignal("SIGUSR2", bad as never),
      failsWith(TypeError, "must be a function"),
    );
  }
});
