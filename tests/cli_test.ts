import assert from "node:assert/strict";
import {
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
  const deno = [Deno.execPath(), "run", "--allow-ffi", "--allow-read", cli, ...args];
  const [command, ...rest] = mqueueMount() === undefined && queuesVisible
    ? ["unshare", "--mount", "sh", "-c", 'mount -t mqueue none /mnt && exec "$@"', "sh", ...deno]
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
    assert.equal(shm.orphaned, false);
    assert.ok(Date.now() - Date.parse(shm.created) < 60_000);

    const sem = find("sem", semName);
    assert.ok(sem, `${semName} listed`);
    assert.deepEqual([sem.value, sem.mode, sem.attached], [3, 0o600, 1]);

    if (queue) {
      const mq = find("mq", mqName);
      assert.ok(mq, `${mqName} listed`);
      assert.deepEqual([mq.messages, mq.size, mq.attached], [1, 10, 1]);
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

ipcTest("ipc gc removes what a killed creator left and keeps what a live one holds", async () => {
  using ours = SharedMemory.create(uniqueName("cli-alive"), { size: 4096 });
  using ourSegment = SysVSharedMemory.create(IPC_PRIVATE, { size: 4096 });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", fixture("cli_orphans.ts"), uniqueName("cli-orphan")],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  const left: { name: string; id: number } = JSON.parse(decoder.decode(value));
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();

  const scope = [left.name, String(left.id), ours.name!, String(ourSegment.id)];
  const dryRun = ipc("gc", "--dry-run", ...scope);
  assert.equal(dryRun.code, 0, dryRun.stderr);
  assert.match(dryRun.stdout, new RegExp(`Would remove shm ${left.name}`));
  assert.ok(list().some((o) => o.name === left.name), "a dry run removes nothing");

  const gc = ipc("gc", "--json", ...scope);
  assert.equal(gc.code, 0, gc.stderr);
  const removed: IpcObject[] = JSON.parse(gc.stdout);
  assert.deepEqual(
    removed.map((o) => `${o.kind} ${o.id ?? o.name}`).sort(),
    [`shm ${left.name}`, `sysv-shm ${left.id}`],
  );
  const after = list();
  assert.ok(!after.some((o) => o.name === left.name || o.id === left.id), "orphans gone");
  assert.ok(after.some((o) => o.name === ours.name), "a live creator's object stays");
  assert.ok(after.some((o) => o.id === ourSegment.id), "a live creator's segment stays");
});

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
  assert.match(row, /0600 .* in use$/);
});
