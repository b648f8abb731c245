import assert from "node:assert/strict";
import {
  IPC_PRIVATE,
  isSystemError,
  MessageQueue,
  Semaphore,
  SharedMemory,
  SysVMessageQueue,
  SysVSemaphoreSet,
  SysVSharedMemory,
} from "../mod.ts";
import { S_ISVTX } from "../ffi/constants.ts";
import { fixture, ipcTest, thrown, uniqueName } from "./helpers.ts";

const child = fixture("ownership_child.ts");
const cli = new URL("../src/cli.ts", import.meta.url).pathname;
const root = Deno.uid() === 0;
/** Root's tests give objects to this uid, which no process of the test runs as. */
const SOMEONE = 4242;
const decoder = new TextDecoder();

/** Runs `command` with a 60 s bound; a hang ends as SIGKILL, which the caller's asserts catch. */
async function run(command: string, args: string[], env: Record<string, string> = {}) {
  const { code, signal, stdout, stderr } = await new Deno.Command(command, {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  return { code, signal, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Runs a Deno program as uid and gid 65534 (nobody), with a Deno cache of its own. */
async function asNobody(args: string[]) {
  const cache = Deno.makeTempDirSync();
  Deno.chmodSync(cache, 0o777);
  try {
    return await run("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      Deno.execPath(),
      ...args,
    ], { DENO_DIR: cache, HOME: cache });
  } finally {
    Deno.removeSync(cache, { recursive: true });
  }
}

for (const [umask, mode] of [["077", 0o644], ["0", 0o640], ["022", 0o660]] as const) {
  ipcTest(
    `every kind created under umask ${umask} gets exactly mode 0${mode.toString(8)}`,
    async () => {
      const prefix = uniqueName("umask");
      const output = await run("sh", [
        "-c",
        `umask ${umask} && exec "$@"`,
        "sh",
        Deno.execPath(),
        "run",
        "-A",
        child,
        "create",
        prefix,
        mode.toString(8),
      ]);
      assert.equal(output.code, 0, output.stderr);
      const seen = JSON.parse(output.stdout);
      assert.equal(parseInt(seen.umask, 8), parseInt(umask, 8), "the child ran under that umask");
      for (const kind of ["shm", "sem", "mq", "sysv", "semHandle", "shmHandle"]) {
        assert.equal(seen[kind], mode, `${kind}: 0${seen[kind].toString(8)}`);
      }
    },
  );
}

ipcTest("chmod() sets exactly the bits asked on every kind, and keeps the owned mark", () => {
  const name = uniqueName("chmod");
  using memory = SharedMemory.create(name, { size: 64 });
  using semaphore = Semaphore.create(name);
  using queue = MessageQueue.create(name);
  const file = (path: string) => Deno.statSync(path).mode! & 0o7777;
  for (
    const [object, path] of [
      [memory, `/dev/shm${name}`],
      [semaphore, `/dev/shm/sem.${name.slice(1)}`],
      [queue, null],
    ] as const
  ) {
    object.chmod(0o604);
    assert.equal(object.permissions.mode, 0o604);
    if (path) assert.equal(file(path), 0o604 | S_ISVTX, "the sticky mark of `ipc gc` stays");
    object.chmod(0);
    assert.equal(object.permissions.mode, 0);
  }
  using persisted = SharedMemory.create(uniqueName("chmod-kept"), { size: 64, persist: true });
  persisted.unlink();
  persisted.chmod(0o640);
  assert.equal(persisted.permissions.mode, 0o640);
  assert.equal(file(`/proc/self/fd/${persisted.fd}`), 0o640, "no mark where there was none");
});

ipcTest("System V chmod() and chown() change only what was asked (a queue's limit stays)", () => {
  using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 64, mode: 0o600 });
  using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1, { mode: 0o600 });
  using queue = SysVMessageQueue.create(IPC_PRIVATE, { mode: 0o600 });
  const limit = queue.stat().limit;
  segment.chmod(0o640);
  set.chmod(0o604);
  queue.chmod(0o620);
  assert.equal(segment.stat().mode, 0o640);
  assert.equal(set.permissions.mode, 0o604);
  assert.equal(queue.stat().mode, 0o620);
  assert.equal(queue.stat().limit, limit);
  const me = { uid: Deno.uid()!, gid: Deno.gid()! };
  segment.chown(-1, -1);
  assert.equal(segment.stat().uid, me.uid);
  if (!root) return;
  segment.chown(SOMEONE, SOMEONE);
  set.chown(SOMEONE);
  queue.chown(-1, SOMEONE);
  assert.deepEqual([segment.stat().uid, segment.stat().gid, segment.stat().creatorUid], [
    SOMEONE,
    SOMEONE,
    me.uid,
  ]);
  assert.deepEqual([set.permissions.uid, set.permissions.gid], [SOMEONE, me.gid]);
  assert.deepEqual([queue.stat().uid, queue.stat().gid], [me.uid, SOMEONE]);
  assert.equal(queue.stat().limit, limit);
});

ipcTest("chown() gives POSIX objects to another user (as root)", () => {
  const name = uniqueName("chown");
  using memory = SharedMemory.create(name, { size: 64 });
  using semaphore = Semaphore.create(name);
  using queue = MessageQueue.create(name);
  memory.chown(SOMEONE, SOMEONE);
  semaphore.chown(SOMEONE);
  queue.chown(-1, SOMEONE);
  assert.equal(Deno.statSync(`/dev/shm${name}`).uid, SOMEONE);
  assert.equal(Deno.statSync(`/dev/shm${name}`).gid, SOMEONE);
  assert.equal(Deno.statSync(`/dev/shm/sem.${name.slice(1)}`).uid, SOMEONE);
  assert.equal(Deno.statSync(`/dev/shm/sem.${name.slice(1)}`).gid, 0);
  assert.deepEqual(queue.permissions, { mode: 0o600, uid: 0, gid: SOMEONE });
}, { ignore: !root }); // only root can give an object away or drop to another user

ipcTest("another user's chmod() is a PermissionDenied that names the owner", async () => {
  const name = uniqueName("foreign");
  using memory = SharedMemory.create(name, { size: 64, mode: 0o644 });
  using queue = MessageQueue.create(name, { mode: 0o644 });
  for (const kind of ["shm", "mq"]) {
    const output = await asNobody(["run", "-A", child, "chmod", kind, name]);
    assert.equal(output.code, 0, output.stderr);
    assert.match(
      output.stdout,
      /^PermissionDenied EPERM .*: it is owned by uid 0; only its owner or root may change its mode/,
    );
  }
  assert.equal(memory.permissions.mode, 0o644);
  assert.equal(queue.permissions.mode, 0o644);
}, { ignore: !root }); // only root can give an object away or drop to another user

ipcTest("ipc rm and gc refuse another user's objects with a message naming the owner", async () => {
  const name = uniqueName("theirs");
  using memory = SharedMemory.create(name, { size: 64 });
  using semaphore = Semaphore.create(name);
  using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 64 });
  memory.chown(SOMEONE);
  semaphore.chown(SOMEONE);
  segment.chown(SOMEONE);
  // gc --force removes only what nobody uses: a persisted segment with no handle open.
  const idle = uniqueName("theirs-idle");
  using made = SharedMemory.create(idle, { size: 64, persist: true });
  made.chown(SOMEONE);
  made.close();
  try {
    const ipc = ["run", "--allow-ffi", "--allow-read", cli];
    for (
      const args of [
        ["rm", "--kind", "shm", name],
        ["rm", "--kind", "sem", name],
        ["rm", String(segment.id)],
        ["gc", "--force", "--kind", "shm", idle],
      ]
    ) {
      const output = await asNobody([...ipc, ...args]);
      assert.equal(output.code, 1, `${args.join(" ")}: ${output.stdout}${output.stderr}`);
      assert.match(
        output.stderr,
        new RegExp(
          `\\((EPERM|EACCES)\\): it is owned by uid ${SOMEONE}; only its owner(, its creator)? or root may remove it`,
        ),
        args.join(" "),
      );
    }
    assert.equal(memory.permissions.uid, SOMEONE, "still there");
    assert.equal(segment.stat().uid, SOMEONE);
  } finally {
    SharedMemory.unlink(idle);
  }
}, { ignore: !root }); // only root can give an object away or drop to another user

ipcTest("a semaphore's chmod() never reaches another semaphore made under its name", () => {
  const name = uniqueName("renamed");
  using first = Semaphore.create(name, { persist: true });
  Semaphore.unlink(name);
  using second = Semaphore.create(name, { mode: 0o600 });
  const error = thrown(() => first.chmod(0o666));
  assert.ok(error instanceof Deno.errors.NotFound && isSystemError(error));
  assert.match(error.message, /now belongs to another semaphore/);
  assert.equal(second.permissions.mode, 0o600);
  second.close();
  assert.throws(() => first.permissions, Deno.errors.NotFound);
});

ipcTest("bad modes and ids are refused before any call; closed handles are BadResource", () => {
  using memory = SharedMemory.anonymous({ size: 4096 });
  for (const mode of [0o10000, 0o1000, -1, NaN, 2 ** 32, 1.5, Infinity]) {
    assert.throws(() => memory.chmod(mode), RangeError, String(mode));
  }
  // deno-lint-ignore no-explicit-any
  assert.throws(() => memory.chmod("0600" as any), RangeError);
  for (const id of [-2, 2 ** 32 - 1, 2 ** 32, NaN, 0.5, -Infinity]) {
    assert.throws(() => memory.chown(id), RangeError, String(id));
    assert.throws(() => memory.chown(-1, id), RangeError, String(id));
  }
  // deno-lint-ignore no-explicit-any
  assert.throws(() => memory.chown("0" as any), TypeError);
  using placed = Semaphore.init(memory, 0);
  assert.throws(() => placed.chmod(0o600), /has no file of its own/);
  assert.throws(() => placed.permissions, TypeError);
  memory.close();
  assert.throws(() => memory.chmod(0o600), Deno.errors.BadResource);
  assert.throws(() => memory.permissions, Deno.errors.BadResource);
  using queue = SysVMessageQueue.create(IPC_PRIVATE);
  queue.close();
  assert.throws(() => queue.chown(0), Deno.errors.BadResource);
});
