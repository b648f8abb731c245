import assert from "node:assert/strict";
import { spawn } from "../mod.ts";
import { POLLIN } from "../ffi/constants.ts";
import { openPidfd, signalChild } from "../src/_reaper.ts";
import { closeFd } from "../src/fd.ts";
import { pollAsync, pollNow } from "../src/_wait.ts";
import { withDeathSignal } from "../src/_pdeathsig.ts";
import { fixture, ipcTest, spawnDeno, thrown } from "./helpers.ts";

/** Starts the middle process and reads the grandchild's pid from its first line. */
async function middle(
  mode: "wait" | "die-now",
  choice: string,
  script?: string,
): Promise<
  {
    process: Deno.ChildProcess;
    grandchild: number;
    lines: ReadableStreamDefaultReader;
    text: string;
  }
> {
  const process = spawnDeno(
    fixture("spawn_orphan.ts"),
    [mode, choice, ...(script === undefined ? [] : [script])],
    { flags: ["--allow-all"] },
  );
  const lines = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const pidLine = () => text.split("\n").slice(0, -1).find((line) => /^\d+$/.test(line));
  while (pidLine() === undefined) {
    const { value, done } = await lines.read();
    if (done) break;
    text += value;
  }
  const grandchild = Number(pidLine());
  assert.ok(grandchild > 1, `the middle process printed ${JSON.stringify(text)}`);
  return { process, grandchild, lines, text };
}

/**
 * Waits at most `ms` for `pidfd`'s process to end; returns the milliseconds it took from
 * `since`, or null if it is still running.
 */
async function endedAfter(pidfd: number, since: number, ms: number): Promise<number | null> {
  const deadline = since + ms;
  while (!(pollNow(pidfd, POLLIN) & POLLIN)) {
    const left = deadline - performance.now();
    if (left <= 0) return null;
    await pollAsync(pidfd, POLLIN, Math.min(left, 100));
  }
  return performance.now() - since;
}

async function finish(process: Deno.ChildProcess, lines: ReadableStreamDefaultReader) {
  await lines.cancel();
  await process.stderr.cancel();
  await process.status;
}

ipcTest("a dieWithParent child is killed when its parent is SIGKILLed", async () => {
  const { process, grandchild, lines } = await middle("wait", "true");
  const pidfd = openPidfd(grandchild);
  assert.ok(pidfd >= 0, "the grandchild runs");
  try {
    process.kill("SIGKILL");
    const elapsed = await endedAfter(pidfd, performance.now(), 5000);
    assert.notEqual(elapsed, null, "the grandchild outlived its parent");
    assert.equal((await process.status).signal, "SIGKILL");
  } finally {
    signalChild(grandchild, pidfd, 9);
    closeFd(pidfd);
    await finish(process, lines);
  }
});

ipcTest("without dieWithParent the same child outlives its parent (the control)", async () => {
  const { process, grandchild, lines } = await middle("wait", "false");
  const pidfd = openPidfd(grandchild);
  assert.ok(pidfd >= 0, "the grandchild runs");
  try {
    process.kill("SIGKILL");
    await process.status;
    assert.equal(await endedAfter(pidfd, performance.now(), 500), null);
  } finally {
    assert.equal(signalChild(grandchild, pidfd, 9), true);
    closeFd(pidfd);
    await finish(process, lines);
  }
});

ipcTest("a parent SIGKILLed right after spawn returns takes the child along", async () => {
  for (let round = 0; round < 5; round++) {
    const { process, grandchild, lines } = await middle("die-now", "true");
    const pidfd = openPidfd(grandchild); // -1: already gone and reaped by init
    try {
      if (pidfd >= 0) {
        assert.notEqual(await endedAfter(pidfd, performance.now(), 5000), null);
      }
    } finally {
      if (pidfd >= 0) signalChild(grandchild, pidfd, 9), closeFd(pidfd);
      await finish(process, lines);
    }
  }
});

ipcTest(
  "the trampoline sends the signal itself when its parent is not the expected one",
  async () => {
    // What happens when the parent died before the prctl: the child was reparented, so the
    // kernel would never signal it. Here the expected parent is another process, as it would be.
    const run = (parent: number, program: string, argv: string[]) => {
      const started = withDeathSignal(9, program, argv, parent);
      return new Deno.Command(started.program, {
        args: started.argv.slice(1),
        stdout: "null",
        stderr: "null",
      }).output();
    };
    const orphaned = await run(1, "/bin/sleep", ["sleep", "60"]);
    assert.equal(orphaned.signal, "SIGKILL");
    const adopted = await run(Deno.pid, "/bin/sh", ["sh", "-c", "exit 7"]);
    assert.equal(adopted.code, 7);
  },
);

ipcTest("dieWithParent: a signal name sends that signal, which the child can catch", async () => {
  const script = 'trap "echo caught TERM; exit 0" TERM; echo ready; while :; do sleep 0.05; done';
  const { process, grandchild, lines, text: first } = await middle("wait", "SIGTERM", script);
  const pidfd = openPidfd(grandchild);
  let text = first;
  try {
    const readUntil = async (word: string) => {
      while (!text.includes(word)) {
        const { value, done } = await lines.read(); // the grandchild shares the same stdout
        if (done) break;
        text += value;
      }
      return text;
    };
    assert.match(await readUntil("ready"), /ready/); // its trap is set
    process.kill("SIGKILL");
    assert.match(await readUntil("caught TERM"), /caught TERM/);
  } finally {
    signalChild(grandchild, pidfd, 9);
    closeFd(pidfd);
    await finish(process, lines);
  }
});

ipcTest("a dieWithParent child runs the program with its arguments, stdio and status", async () => {
  const child = spawn("sh", {
    args: ["-c", 'echo "$@"; exit 3', "sh", "a b", "c"],
    stdout: "piped",
    dieWithParent: true,
  });
  const { status, stdout } = await child.output();
  assert.equal(new TextDecoder().decode(stdout), "a b c\n");
  assert.deepEqual(status, { state: "exited", code: 3, success: false });
});

ipcTest("dieWithParent rejects what is not a boolean or a signal, before spawning", () => {
  for (const bad of [null, "yes", {}, 1.5, 0, 65, "SIG32"]) {
    const error = thrown(() => spawn("true", { dieWithParent: bad as never }));
    assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
  }
});
