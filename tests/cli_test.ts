import assert from "node:assert/strict";
import {
  Channel,
  IPC_PRIVATE,
  MessageQueue,
  Semaphore,
  SharedMemory,
  SysVMessageQueue,
  SysVSemaphoreSet,
  SysVSharedMemory,
} from "../mod.ts";
import type { IpcObject } from "../src/cli.ts";
import { mqueueMount } from "../src/_inventory.ts";
import { fixture, ipcTest, uniqueName } from "./helpers.ts";

const cli = new URL("../src/cli.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/**
 * Message queues are listed only where an mqueue file system is mounted. Where none is, the
 * CLI runs in a private mount namespace with one (`unshare --mount`, as root), which changes
 * nothing on the machine.
 */
const queuesVisible = mqueueMount() !== undefined || canUnshare();

function canUnshare(): boolean {
  try {
    return new Deno.Command("unshare", { args: ["--mount", "true"], stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** Runs `ipc ARGS` as its own process, with only the permissions its docs ask for. */
function ipc(...args: string[]): { code: number; stdout: string; stderr: string } {
  return ipcIn([], ...args);
}

/**
 * Runs `ipc ARGS` with `unshare` options first (["--pid", "--fork", "--mount-proc"]: in a PID
 * namespace of its own, where /proc shows none of this test's processes).
 */
function ipcIn(
  unshare: string[],
  ...args: string[]
): { code: number; stdout: string; stderr: string } {
  const deno = [Deno.execPath(), "run", "--allow-ffi", "--allow-read", cli, ...args];
  const mount = mqueueMount() === undefined && queuesVisible;
  const [command, ...rest] = mount || unshare.length > 0
    ? [
      "unshare",
      "--mount",
      ...unshare,
      "sh",
      "-c",
      `${mount ? "mount -t mqueue none /mnt && " : ""}exec "$@"`,
      "sh",
      ...deno,
    ]
    : deno;
  const output = new Deno.Command(command!, { args: rest }).outputSync();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

function list(...args: string[]): IpcObject[] {
  const { code, stdout, stderr } = ipc("ls", "--json", ...args);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout);
}

ipcTest(
  "ipc ls --json lists an object of every kind with its fields, and ipc rm removes them",
  async () => {
    const shmName = uniqueName("cli-shm");
    const semName = uniqueName("cli-sem");
    const mqName = uniqueName("cli-mq");
    using _memory = SharedMemory.create(shmName, { size: 8192, persist: true });
    const channelName = uniqueName("cli-channel");
    using _channel = Channel.create({ name: channelName, capacity: 4096 });
    using _semaphore = Semaphore.create(semName, { value: 3, persist: true });
    using queue = queuesVisible ? MessageQueue.create(mqName, { persist: true }) : undefined;
    await queue?.send(new Uint8Array(10));
    using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 4096, persist: true });
    using set = SysVSemaphoreSet.create(IPC_PRIVATE, 2, { persist: true });
    set.setValue(1, 5);
    using sysvQueue = SysVMessageQueue.create(IPC_PRIVATE, { persist: true });
    await sysvQueue.send(1, new Uint8Array(7));

    const objects = list();
    const find = (kind: string, key: string | number) =>
      objects.find((o) => o.kind === kind && (o.name === key || o.id === key));
    const me = Deno.uid()!;

    const shm = find("shm", shmName);
    assert.ok(shm, `${shmName} listed`);
    assert.deepEqual([shm.size, shm.mode, shm.uid, shm.attached], [8192, 0o600, me, 1]);
    assert.deepEqual(shm.processes, [{ pid: Deno.pid, role: "user", alive: true }]);
    assert.deepEqual([shm.orphaned, shm.state, shm.owned], [false, "in use", false]);
    const channel = find("shm", channelName);
    assert.deepEqual([channel?.owned, channel?.state], [true, "in use"], "a named Channel owns it");
    assert.ok(Date.now() - Date.parse(shm.created) < 60_000);

    const sem = find("sem", semName);
    assert.ok(sem, `${semName} listed`);
    assert.deepEqual([sem.value, sem.mode, sem.attached], [3, 0o600, 1]);

    if (queue) {
      const mq = find("mq", mqName);
      assert.ok(mq, `${mqName} listed`);
      assert.deepEqual([mq.messages, mq.size, mq.attached], [1, 10, 1]);
      assert.ok(!mq.processes.some((p) => p.role === "notified"), "nobody registered yet");
      using _notices = queue.notifications();
      const notified = list().find((o) => o.kind === "mq" && o.name === mqName);
      assert.deepEqual(
        notified?.processes.find((p) => p.role === "notified"),
        { pid: Deno.pid, role: "notified", alive: true },
        "the registered process's pid, from the queue's NOTIFY_PID",
      );
    } else {
      console.warn("(no mqueue mount and no unshare here: the queue part is not checked)");
    }

    const sysvShm = find("sysv-shm", segment.id);
    assert.ok(sysvShm, `segment ${segment.id} listed`);
    assert.deepEqual([sysvShm.name, sysvShm.size, sysvShm.attached], ["0x00000000", 4096, 0]);
    assert.deepEqual(sysvShm.processes[0], { pid: Deno.pid, role: "creator", alive: true });

    const sysvSem = find("sysv-sem", set.id);
    assert.ok(sysvSem, `set ${set.id} listed`);
    assert.equal(sysvSem.semaphores, 2);
    assert.deepEqual(sysvSem.processes, [{ pid: Deno.pid, role: "last-op", alive: true }]);

    const sysvMsg = find("sysv-msg", sysvQueue.id);
    assert.ok(sysvMsg, `queue ${sysvQueue.id} listed`);
    assert.deepEqual([sysvMsg.messages, sysvMsg.size], [1, 7]);

    const targets = [shmName, semName, ...(queue ? [mqName] : [])];
    const removed = ipc("rm", ...targets);
    assert.equal(removed.code, 0, removed.stderr);
    for (
      const [kind, id] of [["sysv-shm", segment.id], ["sysv-sem", set.id], [
        "sysv-msg",
        sysvQueue.id,
      ]]
    ) {
      const result = ipc("rm", "--kind", String(kind), String(id));
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`Removed ${kind} ${id}`));
    }
    const after = list();
    for (const name of targets) assert.ok(!after.some((o) => o.name === name), `${name} gone`);
    for (const id of [segment.id, set.id, sysvQueue.id]) {
      assert.ok(!after.some((o) => o.id === id), `id ${id} gone`);
    }
  },
);

/** Starts tests/fixtures/cli_orphans.ts, reads the names it made, and kills it with SIGKILL. */
async function killedCreator(): Promise<Record<string, string> & { segment: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      fixture("cli_orphans.ts"),
      uniqueName("gc"),
      queuesVisible ? "queues" : "no-queues",
    ],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  return JSON.parse(decoder.decode(value));
}

interface GcResult {
  dryRun: boolean;
  removed: IpcObject[];
  kept: IpcObject[];
  failed: { object: IpcObject; error: string }[];
}

ipcTest(
  "ipc gc removes only what a killed creator's handles owned, and keeps persisted objects and queues with messages",
  async () => {
    using ours = SharedMemory.create(uniqueName("cli-alive"), { size: 4096 });
    using ourSegment = SysVSharedMemory.create(IPC_PRIVATE, { size: 4096 });
    const left = await killedCreator();
    const owned = [left.ownedShm, left.ownedSem, ...(queuesVisible ? [left.ownedQueue] : [])];
    const persisted = [left.keptShm, ...(queuesVisible ? [left.keptQueue] : [])];
    const scope = [
      ...owned,
      ...persisted,
      ...(queuesVisible ? [left.ownedFullQueue] : []),
      String(left.segment),
      ours.name!,
      String(ourSegment.id),
    ];

    const dryRun = ipc("gc", "--dry-run", ...scope);
    assert.equal(dryRun.code, 0, dryRun.stderr);
    const orphan = "owned by a handle that is gone, nothing has it";
    assert.match(dryRun.stdout, new RegExp(`Would remove shm ${left.ownedShm}: ${orphan} open`));
    assert.match(dryRun.stdout, new RegExp(`Would remove sem ${left.ownedSem}: ${orphan} mapped`));
    assert.match(
      dryRun.stdout,
      new RegExp(`Would keep shm ${left.keptShm}: kept: persisted, or made by another program`),
    );
    assert.match(dryRun.stdout, new RegExp(`Would keep sysv-shm ${left.segment} .*--force`));
    assert.match(
      dryRun.stdout,
      new RegExp(`Would keep shm ${ours.name}: kept: open or mapped by 1`),
    );
    if (queuesVisible) {
      assert.match(dryRun.stdout, new RegExp(`Would keep mq ${left.keptQueue}: kept: 2 messages`));
      assert.match(
        dryRun.stdout,
        new RegExp(`Would keep mq ${left.ownedFullQueue}: kept: 1 message`),
      );
    }
    assert.ok(list().some((o) => o.name === left.ownedShm), "a dry run removes nothing");

    const gc = ipc("gc", "--json", ...scope);
    assert.equal(gc.code, 0, gc.stderr);
    const result: GcResult = JSON.parse(gc.stdout);
    assert.deepEqual(result.removed.map((o) => o.name).sort(), [...owned].sort());
    for (const object of result.removed) {
      assert.equal(object.state, "orphaned");
      assert.equal(object.owned, true);
      assert.match(object.reason, /^owned by a handle that is gone/);
    }
    const after = list();
    for (const name of owned) assert.ok(!after.some((o) => o.name === name), `${name} removed`);
    for (const name of persisted) assert.ok(after.some((o) => o.name === name), `${name} kept`);
    const keptQueue = after.find((o) => o.name === left.keptQueue);
    if (queuesVisible) assert.equal(keptQueue?.messages, 2, "its messages are still there");
    assert.ok(after.some((o) => o.id === left.segment), "a System V segment needs --force");
    assert.ok(after.some((o) => o.name === ours.name), "a live creator's object stays");

    // --force takes what nothing uses, and still never what is in use.
    const rest = scope.filter((operand) => !owned.includes(operand));
    const forced = ipc("gc", "--force", "--json", ...rest);
    assert.equal(forced.code, 0, forced.stderr);
    const swept: GcResult = JSON.parse(forced.stdout);
    assert.deepEqual(
      swept.removed.map((o) => o.id ?? o.name).sort(),
      [
        ...persisted,
        ...(queuesVisible ? [left.ownedFullQueue] : []),
        left.segment,
      ].sort(),
    );
    const finally_ = list();
    assert.ok(finally_.some((o) => o.name === ours.name), "in use: kept even with --force");
    assert.ok(finally_.some((o) => o.id === ourSegment.id), "a live creator's segment stays");
  },
);

ipcTest(
  "ipc gc keeps an owned object whose owner it cannot see, in another PID namespace, by the owner's lock",
  async () => {
    if (!canUnshare()) return console.warn("(no unshare here: not checked)");
    const names = [uniqueName("cli-hidden-shm"), uniqueName("cli-hidden-sem")];
    using _memory = SharedMemory.create(names[0]!, { size: 4096 });
    using _semaphore = Semaphore.create(names[1]!, { value: 0 });
    if (queuesVisible) names.push(uniqueName("cli-hidden-mq"));
    using _queue = queuesVisible ? MessageQueue.create(names[2]!) : undefined;
    // In a new PID namespace with its own /proc, no process of this test is visible.
    const isolated = ["--pid", "--fork", "--mount-proc"];
    const seen = ipcIn(isolated, "gc", "--json", ...names);
    assert.equal(seen.code, 0, seen.stderr);
    const result: GcResult = JSON.parse(seen.stdout);
    assert.deepEqual(result.removed, []);
    assert.deepEqual(
      result.kept.map((o) => [o.name, o.state, o.reason, o.attached]),
      names.map((name) => [name, "in use", "kept: the handle that owns it is open", 0]),
    );
    await Promise.resolve();
  },
);

ipcTest(
  "ipc rm and gc refuse System V ids and keys out of range, and unknown kinds, with exit code 2",
  () => {
    for (
      const operand of [
        "2147483648",
        "4294967296",
        "4294967297",
        "99999999999999999999",
        "0x100000000",
        "0x1000000000000002a",
        "0x0",
        "NaN",
        "-1",
        "1e3",
      ]
    ) {
      for (const command of ["rm", "gc"]) {
        const result = ipc(command, operand);
        assert.equal(result.code, 2, `${command} ${operand}: ${result.stderr}`);
        assert.match(result.stderr, /out of range|IPC_PRIVATE|neither a POSIX name|Unknown option/);
        assert.equal(result.stdout, "", `${command} ${operand} removed nothing`);
      }
    }
    for (const kind of ["toString", "__proto__", "constructor", "hasOwnProperty"]) {
      const result = ipc("ls", "--kind", kind);
      assert.equal(result.code, 2, kind);
      assert.match(result.stderr, new RegExp(`unknown kind "${kind}"`));
    }
    const unknown = ipc("gc", uniqueName("never-made"));
    assert.equal(unknown.code, 1, "a name gc cannot find");
    assert.match(unknown.stderr, /no IPC object is named/);
  },
);

ipcTest("ipc gives usage errors exit code 2 and unknown names exit code 1", () => {
  const unknownKind = ipc("ls", "--kind", "pipes");
  assert.equal(unknownKind.code, 2);
  assert.match(unknownKind.stderr, /unknown kind "pipes": use one of shm, sem, mq/);
  const unknownFlag = ipc("ls", "--colour");
  assert.equal(unknownFlag.code, 2);
  assert.match(unknownFlag.stderr, /Unknown option '--colour'/);
  const unknownCommand = ipc("list");
  assert.equal(unknownCommand.code, 2);
  assert.match(unknownCommand.stderr, /unknown command "list"/);
  const badOperand = ipc("rm", "jobs");
  assert.equal(badOperand.code, 2);
  assert.match(badOperand.stderr, /neither a POSIX name/);
  const missing = ipc("rm", uniqueName("never-made"));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no IPC object is named/);
  const help = ipc("gc", "--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: ipc gc/);
});

ipcTest("ipc limits prints every limit with its meaning, as a table or JSON", () => {
  const table = ipc("limits");
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^LIMIT +VALUE +MEANING/);
  assert.match(table.stdout, /fs\.mqueue\.msg_max +\d+ +largest maxMessages/);
  const limits: { name: string; value: unknown }[] = JSON.parse(ipc("limits", "--json").stdout);
  const names = limits.map((limit) => limit.name);
  for (const name of ["kernel.shmmni", "kernel.sem SEMMNI", "kernel.msgmni", "RLIMIT_MSGQUEUE"]) {
    assert.ok(names.includes(name), name);
  }
  const shmmni = Number(Deno.readTextFileSync("/proc/sys/kernel/shmmni"));
  assert.equal(limits.find((limit) => limit.name === "kernel.shmmni")?.value, shmmni);
});

ipcTest("ipc ls prints an aligned table without colour when not on a terminal", () => {
  using _memory = SharedMemory.create(uniqueName("cli-table"), { size: 4096 });
  const { code, stdout } = ipc("ls", "--kind", "shm");
  assert.equal(code, 0);
  const [header, ...rows] = stdout.trimEnd().split("\n");
  assert.match(header!, /^KIND +NAME\/KEY +ID +SIZE +MODE +OWNER/);
  assert.ok(!stdout.includes("\x1b["), "no colour codes in a pipe");
  const row = rows.find((line) => line.includes("cli-table"))!;
  assert.equal(row.indexOf("4 KiB"), header!.indexOf("SIZE"));
  assert.match(row, /0600 .* in use +kept: open or mapped by 1 process$/);
  assert.match(header!, /STATE +WHY$/);
});

Deno.test("main() with bad args or output rejects with a TypeError before doing anything", async () => {
  const { main } = await import("../src/cli.ts");
  const lines: string[] = [];
  const good = { out: (line: string) => lines.push(line), err: () => {}, color: false };
  const badOutputs = ["", null, 5, {}, { out: () => {} }, Object.create(null), {
    ...good,
    color: 1,
  }];
  for (const output of badOutputs) {
    await assert.rejects(
      main(["ls"], output as never),
      (error: unknown) =>
        error instanceof TypeError && /Cannot run ipc with output/.test(error.message),
    );
  }
  for (const args of [null, "ls", [Symbol()], [1], Object.create(null)]) {
    await assert.rejects(
      main(args as never, good),
      (error: unknown) =>
        error instanceof TypeError && /Cannot run ipc with args/.test(error.message),
    );
  }
  assert.deepEqual(lines, []);
  assert.equal(await main(["help"], good), 0);
});
