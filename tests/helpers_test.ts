import assert from "node:assert/strict";
import { MessageQueue, SharedMemory } from "../mod.ts";
import { ipcSnapshot, uniqueName } from "./helpers.ts";

Deno.test("the leak check sees a segment's name, descriptor and mapping until it is closed", () => {
  const before = ipcSnapshot();
  const name = uniqueName("snapshot");
  using memory = SharedMemory.create(name, { size: 4096 });
  const added = [...ipcSnapshot()].filter((entry) => !before.has(entry));
  assert.ok(added.includes(`/dev/shm${name}`), "the name");
  assert.ok(added.some((entry) => entry.startsWith("fd ") && entry.endsWith(`/dev/shm${name}`)));
  assert.ok(
    added.some((entry) => entry.startsWith("mapping ") && entry.endsWith(`/dev/shm${name}`)),
  );
  memory.close();
  assert.deepEqual([...ipcSnapshot()].filter((entry) => !before.has(entry)), []);
});

Deno.test("the leak check sees a child process until it is reaped", async () => {
  const before = ipcSnapshot();
  const child = new Deno.Command("sleep", { args: ["5"] }).spawn();
  const added = [...ipcSnapshot()].filter((entry) => !before.has(entry));
  assert.deepEqual(added, [`child process ${child.pid}`]);
  child.kill("SIGKILL");
  await child.status;
  assert.deepEqual([...ipcSnapshot()].filter((entry) => !before.has(entry)), []);
});

Deno.test("the leak check sees a message queue until it is closed", () => {
  const before = ipcSnapshot();
  const name = uniqueName("queue");
  using queue = MessageQueue.create(name);
  const added = [...ipcSnapshot()].filter((entry) => !before.has(entry));
  assert.ok(added.includes(`/dev/mqueue${name}`), "the queue");
  assert.ok(
    added.some((entry) => entry.startsWith("fd ") && entry.endsWith(name)),
    "its descriptor",
  );
  queue.close();
  assert.deepEqual([...ipcSnapshot()].filter((entry) => !before.has(entry)), []);
});

const leftovers = new URL("./leftovers.ts", import.meta.url).pathname;

/** Whether tests/leftovers.ts makes a private namespace here (root, with unshare). */
function namespaceMode(): boolean {
  if (Deno.uid() !== 0) return false;
  try {
    return new Deno.Command("unshare", { args: ["--ipc", "--mount", "true"] }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** Runs tests/leftovers.ts over `script` (sh), in `scope`; `during` runs once it printed "started". */
async function runLeftovers(
  scope: "namespace" | "suite",
  script: string,
  during: () => void = () => {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  // Not "namespace", which says "inside one already" (as this test is, under deno task test).
  const env = { PIPC_TEST_SCOPE: scope === "suite" ? "suite" : "" };
  const running = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", leftovers, "sh", "-c", `echo started; ${script}`],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => running.kill("SIGKILL"), 30_000);
  try {
    const reader = running.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let stdout = "";
    while (!stdout.includes("started\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    during();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      stdout += chunk.value;
    }
    const stderr = await new Response(running.stderr).text();
    return { code: (await running.status).code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

for (const scope of ["namespace", "suite"] as const) {
  const unavailable = scope === "namespace" && !namespaceMode();
  const skipped = unavailable ? " (skipped: needs root and unshare)" : "";
  Deno.test({
    name:
      `leftovers.ts in the ${scope} scope ignores what another program makes meanwhile${skipped}`,
    ignore: unavailable,
    async fn() {
      const other = `/dev/shm/pipc-other-program-${crypto.randomUUID().slice(0, 8)}`;
      try {
        const result = await runLeftovers(
          scope,
          "sleep 0.3",
          () => Deno.writeTextFileSync(other, ""),
        );
        assert.equal(result.code, 0, result.stderr);
        assert.match(
          result.stdout,
          scope === "namespace" ? /private IPC and mount namespace/ : /namespace is shared/,
        );
        if (scope === "suite") assert.match(result.stderr, /not judged.*\n.*pipc-other-program/);
      } finally {
        Deno.removeSync(other);
      }
    },
  });
  Deno.test({
    name: `leftovers.ts in the ${scope} scope fails a suite that leaves an object${skipped}`,
    ignore: unavailable,
    async fn() {
      const result = await runLeftovers(
        scope,
        // named with the run's prefix, and after the pid of the suite's process (sh, here)
        'touch "/dev/shm/pipc-test-$PIPC_TEST_RUN-left" "/dev/shm/example-$$"',
      );
      const report = result.stderr.slice(result.stderr.indexOf("left IPC objects behind"));
      const left = [...report.matchAll(/\/dev\/shm\/(\S+)/g)].map((match) => match[1]!);
      try {
        assert.equal(result.code, 1);
        assert.match(result.stderr, /left IPC objects behind/);
        assert.equal(left.length, 2, result.stderr);
        for (const name of left) {
          // In the namespace scope the objects vanished with the namespace.
          assert.equal(existsInShm(name), scope === "suite", name);
        }
      } finally {
        for (const name of left) if (existsInShm(name)) Deno.removeSync(`/dev/shm/${name}`);
      }
    },
  });
}

function existsInShm(name: string): boolean {
  try {
    Deno.statSync(`/dev/shm/${name}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test("ipcSnapshot in the suite scope sees only what this suite made", () => {
  const other = `/dev/shm/pipc-other-program-${crypto.randomUUID().slice(0, 8)}`;
  const mine = `/dev/shm/example-${Deno.pid}`;
  const before = ipcSnapshot("suite");
  try {
    Deno.writeTextFileSync(other, "");
    Deno.writeTextFileSync(mine, "");
    const added = [...ipcSnapshot("suite")].filter((entry) => !before.has(entry));
    assert.deepEqual(added, [mine]);
    assert.ok(ipcSnapshot("namespace").has(other));
  } finally {
    Deno.removeSync(other);
    Deno.removeSync(mine);
  }
});
