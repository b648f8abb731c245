import assert from "node:assert/strict";
import {
  ftok,
  IPC_PRIVATE,
  isSystemError,
  spawnDeno,
  SysVAttachment,
  SysVMessageQueue,
  SysVSemaphoreSet,
  SysVSharedMemory,
} from "../mod.ts";
import { assertSucceeded, fixture, ipcTest, runDeno, thrown } from "./helpers.ts";

const child = fixture("sysv_child.ts");
const decoder = new TextDecoder();

/** A key no other object uses: random, and checked free. */
function uniqueKey(): number {
  while (true) {
    const key = 0x50000000 + Math.floor(Math.random() * 0x00ffffff);
    const taken = [SysVSharedMemory, SysVSemaphoreSet, SysVMessageQueue].some((Kind) => {
      try {
        Kind.open(key).close();
        return true;
      } catch {
        return false;
      }
    });
    if (!taken) return key;
  }
}

ipcTest(
  "SEM_UNDO: a child killed with SIGKILL while holding the semaphore gives it back",
  async () => {
    const key = uniqueKey();
    using set = SysVSemaphoreSet.create(key, 1);
    set.setValue(0, 1);
    await using holder = spawnDeno(child, {
      args: ["undo", String(key)],
      permissions: { ffi: true },
      stdout: "piped",
    });
    const reader = holder.stdout!.readable.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value?.trim(), "taken");
    assert.equal(set.getValue(0), 0);
    holder.kill("SIGKILL");
    const status = await holder.status;
    assert.equal(status.state === "signaled" && status.signal, "SIGKILL");
    assert.equal(set.getValue(0), 1, "the kernel reverted the child's change");
    await reader.cancel();
  },
);

ipcTest("typed messages: selection by type 0, > 0 and < 0 across two processes", async () => {
  const key = uniqueKey();
  using queue = SysVMessageQueue.create(key);
  for (
    const [type, text] of [[3, "a"], [1, "b"], [2, "c"], [5, "d"], [4, "e"], [1, "f"]] as const
  ) {
    await queue.send(type, text);
  }
  assert.equal(queue.stat().messages, 6);
  const output = assertSucceeded(
    await runDeno(child, ["select", String(key), "0", "2", "-4", "-4", "5", "0"]),
  );
  assert.equal(output.stdout.trim(), "3:a 2:c 1:b 1:f 5:d 4:e");
  const stat = queue.stat();
  assert.equal(stat.messages, 0);
  assert.notEqual(stat.lastReceivePid, Deno.pid);
  assert.equal(stat.lastSendPid, Deno.pid);
});

ipcTest(
  "System V shared memory: another process writes, this one reads; stat and owner rule",
  async () => {
    const key = uniqueKey();
    const segment = SysVSharedMemory.create(key, { size: 4096 });
    using view = segment.attach();
    assertSucceeded(await runDeno(child, ["write", String(key), "from the child"]));
    assert.equal(decoder.decode(view.bytes.subarray(0, 14)), "from the child");
    const stat = segment.stat();
    assert.equal(stat.size, 4096);
    assert.equal(stat.attachCount, 1);
    assert.equal(stat.creatorPid, Deno.pid);
    assert.equal(stat.mode, 0o600);
    assert.ok(stat.attachedAt instanceof Date);
    using reader = segment.attach({ readOnly: true });
    assert.equal(decoder.decode(reader.read(0, 4)), "from");
    assert.throws(() => reader.buffer, /read-only attachment .* use read\(\)/);
    assert.throws(() => reader.read(4090, 10), RangeError);
    assert.throws(() => SysVSharedMemory.create(key, { size: 64 }), Deno.errors.AlreadyExists);
    const bytes = view.bytes;
    segment.close();
    assert.equal(bytes.length, 0, "closing the creator detached its attachments");
    assert.equal(view.detached, true);
    assert.throws(
      () => SysVSharedMemory.open(key),
      Deno.errors.NotFound,
      "and removed the segment",
    );
  },
);

ipcTest("semaphore sets: several operations apply atomically, all or none", async () => {
  using set = SysVSemaphoreSet.create(IPC_PRIVATE, 3);
  set.setValue(0, 1);
  assert.equal(set.tryOp([{ index: 0, delta: -1 }, { index: 1, delta: -1 }]), false);
  assert.deepEqual(set.values, [1, 0, 0], "none applied");
  await set.op([{ index: 1, delta: 2 }, { index: 2, delta: 1 }]);
  await set.op([{ index: 0, delta: -1 }, { index: 1, delta: -2 }]);
  assert.deepEqual(set.values, [0, 0, 1]);
  await set.op([{ index: 0, delta: 0 }], { timeout: 1000 }); // wait-for-zero passes at once
  await assert.rejects(set.op([{ index: 0, delta: -1, noWait: true }]), Deno.errors.WouldBlock);
});

ipcTest("waits end promptly on timeout and abort", async () => {
  using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
  using queue = SysVMessageQueue.create(IPC_PRIVATE);
  for (
    const wait of [
      (options: { timeout?: number; signal?: AbortSignal }) =>
        set.op([{ index: 0, delta: -1 }], options),
      (options: { timeout?: number; signal?: AbortSignal }) => queue.receive(options),
    ]
  ) {
    let started = performance.now();
    await assert.rejects(wait({ timeout: 100 }), Deno.errors.TimedOut);
    assert.ok(performance.now() - started < 1000);
    started = performance.now();
    await assert.rejects(wait({ signal: AbortSignal.timeout(50) }), DOMException);
    assert.ok(performance.now() - started < 1000);
  }
  await assert.rejects(queue.receive({ noWait: true }), Deno.errors.WouldBlock);
});

ipcTest(
  "bad input: unknown keys, indexes, deltas, types, sizes and keys of the wrong kind",
  async () => {
    const key = uniqueKey();
    for (const Kind of [SysVSharedMemory, SysVSemaphoreSet, SysVMessageQueue]) {
      const error = thrown(() => Kind.open(key));
      assert.ok(
        error instanceof Deno.errors.NotFound && isSystemError(error) && error.code === "ENOENT",
        String(error),
      );
      for (const bad of [1.5, NaN, Infinity, 2 ** 32, -(2 ** 31) - 1, 2 ** 53]) {
        assert.throws(() => Kind.open(bad), RangeError, "key");
      }
      assert.throws(() => Kind.open("1" as unknown as number), TypeError);
    }
    using set = SysVSemaphoreSet.create(IPC_PRIVATE, 2);
    assert.throws(() => set.getValue(2), /semaphore index 2: .* has 0 to 1/);
    assert.throws(() => set.setValue(0, 40000), RangeError);
    await assert.rejects(set.op([{ index: 0, delta: 40000 }]), RangeError);
    await assert.rejects(set.op([]), TypeError);
    assert.throws(() => SysVSemaphoreSet.create(IPC_PRIVATE, 0), RangeError);
    using queue = SysVMessageQueue.create(IPC_PRIVATE);
    await assert.rejects(queue.send(0, "x"), /types are integers from 1/);
    await assert.rejects(queue.send(1, new Uint8Array(1_000_000)), /msgmax/);
    assert.throws(() => SysVSharedMemory.create(IPC_PRIVATE, { size: 0 }), RangeError);
    assert.throws(() => ftok("/", 0), RangeError);
    assert.throws(() => ftok("/no/such/file", 1), Deno.errors.NotFound);
    assert.equal(ftok("/", 7), ftok("/", 7));
  },
);

ipcTest("keys of 2^31 and more (0xdeadbeef) work, are shown unsigned, and reach C as key_t", () => {
  // A high key no other object uses.
  let key = 0;
  do key = 0x80000000 + Math.floor(Math.random() * 0x7ffffff0); while (isTaken(key));
  for (const Kind of [SysVSharedMemory, SysVSemaphoreSet, SysVMessageQueue]) {
    using created = Kind === SysVSharedMemory
      ? SysVSharedMemory.create(key, { size: 64 })
      : Kind === SysVSemaphoreSet
      ? SysVSemaphoreSet.create(key, 1)
      : SysVMessageQueue.create(key);
    assert.equal(created.key, key);
    using opened = Kind.open(key);
    assert.equal(opened.id, created.id);
    using bySignedKey = Kind.open(key | 0); // the same 32 bits, as C's key_t shows them
    assert.equal(bySignedKey.key, key);
    assert.equal(bySignedKey.id, created.id);
    // the kernel's own table shows the key as a signed key_t
    const kind = Kind === SysVSharedMemory ? "shm" : Kind === SysVSemaphoreSet ? "sem" : "msg";
    const row = Deno.readTextFileSync(`/proc/sysvipc/${kind}`).split("\n")
      .map((line) => line.trim().split(/\s+/))
      .find((fields) => fields[1] === String(created.id));
    assert.equal(Number(row?.[0]), key | 0);
  }
  assert.equal(ftok("/", 1) >= 0, true);
});

function isTaken(key: number): boolean {
  return [SysVSharedMemory, SysVSemaphoreSet, SysVMessageQueue].some((Kind) => {
    try {
      Kind.open(key).close();
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether this process may make an IPC namespace of its own (root with unshare). */
function canUnshareIpc(): boolean {
  try {
    return new Deno.Command("unshare", { args: ["--ipc", "true"], stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

ipcTest(
  "System V limit errors name the limit, its value now and how to raise it",
  async () => {
    // In an IPC namespace of its own, whose limits the child may lower without touching the
    // machine's.
    const limits = "echo 4096 > /proc/sys/kernel/shmmax && echo 1 > /proc/sys/kernel/shmmni && " +
      "echo '4 8 2 1' > /proc/sys/kernel/sem && echo 1 > /proc/sys/kernel/msgmni && " +
      "echo 64 > /proc/sys/kernel/msgmnb && echo 32 > /proc/sys/kernel/msgmax";
    const output = await new Deno.Command("unshare", {
      args: [
        "--ipc",
        "sh",
        "-c",
        `${limits} && exec "$0" run --allow-all "$1"`,
        Deno.execPath(),
        fixture("sysv_limits.ts"),
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    const stderr = decoder.decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const results = new Map<string, { name: string; code?: string; message: string }>(
      decoder.decode(output.stdout).trim().split("\n").map((line) => {
        const result = JSON.parse(line);
        return [result.label, result];
      }),
    );
    const expect = (label: string, name: string, code: string | undefined, ...parts: RegExp[]) => {
      const result = results.get(label);
      assert.ok(result, `no result for ${label}: ${stderr}`);
      assert.equal(result.name, name, result.message);
      assert.equal(result.code, code, result.message);
      for (const part of parts) assert.match(result.message, part);
    };
    expect(
      "SHMMAX",
      "IpcError",
      "EINVAL",
      /SHMMAX \(kernel\.shmmax, 4 KiB now\)/,
      /sysctl -w kernel\.shmmax=/,
    );
    expect(
      "SHMMNI",
      "IpcError",
      "ENOSPC",
      /SHMMNI \(kernel\.shmmni, 1 now\)/,
      /SHMALL/,
      /sysctl -w kernel\.shmmni=/,
    );
    expect("SEMMSL", "IpcError", "EINVAL", /a set of 5 .*SEMMSL \(.*kernel\.sem, 4 now\)/);
    expect("SEMMNI", "IpcError", "ENOSPC", /SEMMNI \(.*kernel\.sem, 1 now\)/, /SEMMNS/);
    expect("SEMOPM", "IpcError", "E2BIG", /3 operations .*SEMOPM \(.*kernel\.sem, 2 now\)/);
    expect("MSGMNI", "IpcError", "ENOSPC", /MSGMNI \(kernel\.msgmni, 1 now\)/);
    expect("MSGMAX", "RangeError", undefined, /MSGMAX \(kernel\.msgmax, 32 bytes now\)/);
    expect("full", "WouldBlock", undefined, /noWait/);
    expect(
      "MSGMNB",
      "RangeError",
      undefined,
      /holds 16 bytes at most, so it would never fit.*MSGMNB \(kernel\.msgmnb, 16 bytes now\)/,
      /sysctl -w kernel\.msgmnb=/,
    );
  },
  { ignore: !canUnshareIpc() },
);

for (
  const [kind, made, what] of [
    ["sysv", 600, "segments (with an attachment each), sets and queues"],
    ["transfer", 2, "an attachment whose buffer was transferred away"],
  ] as const
) {
  ipcTest(`System V handles dropped without close() are released on GC: ${what}`, async () => {
    const output = await runDeno(fixture("gc_dropped.ts"), [kind], {
      flags: ["--allow-all", "--v8-flags=--expose-gc"],
      timeout: 60_000,
    });
    assert.equal(output.code, 0, output.stderr); // 139 would be a SIGSEGV on the transferred buffer
    assert.deepEqual(JSON.parse(output.stdout), { made, left: [] });
  });
}

ipcTest(
  "open() of any kind refuses IPC_PRIVATE (0, -0): it would make a new object, never open one",
  () => {
    const before = Deno.readTextFileSync("/proc/sysvipc/msg");
    for (const key of [IPC_PRIVATE, 0, -0]) {
      for (const Kind of [SysVMessageQueue, SysVSemaphoreSet, SysVSharedMemory]) {
        assert.throws(
          () => Kind.open(key),
          { name: "RangeError", message: /IPC_PRIVATE/ },
          Kind.name,
        );
      }
    }
    assert.equal(Deno.readTextFileSync("/proc/sysvipc/msg"), before, "no queue was made");
  },
);

ipcTest("System V options refuse null and non-objects with a TypeError", async () => {
  using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 64 });
  using queue = SysVMessageQueue.create(IPC_PRIVATE);
  const calls: [string, (options: never) => unknown][] = [
    ["SysVSharedMemory.create", (options) => SysVSharedMemory.create(IPC_PRIVATE, options)],
    ["SysVSemaphoreSet.create", (options) => SysVSemaphoreSet.create(IPC_PRIVATE, 1, options)],
    ["SysVMessageQueue.create", (options) => SysVMessageQueue.create(IPC_PRIVATE, options)],
    ["attach", (options) => segment.attach(options)],
  ];
  for (const options of [null, 7, "o", Symbol("o")]) {
    for (const [call, fn] of calls) {
      assert.throws(() => fn(options as never), { name: "TypeError", message: /options/ }, call);
    }
    await assert.rejects(queue.receive(options as never), {
      name: "TypeError",
      message: /options/,
    });
  }
});

ipcTest(
  "System V arguments that cannot be numbers are TypeErrors naming the argument",
  async () => {
    using set = SysVSemaphoreSet.create(IPC_PRIVATE, 2);
    using queue = SysVMessageQueue.create(IPC_PRIVATE);
    using segment = SysVSharedMemory.create(IPC_PRIVATE, { size: 64 });
    using attachment = segment.attach({ readOnly: true });
    const hostile = [Symbol("h"), Object.create(null), 1n, "1", null];
    for (const value of hostile) {
      const v = value as never;
      if (typeof value !== "string") {
        assert.throws(() => ftok(v, 1), { name: "TypeError", message: /path/ });
      }
      assert.throws(() => ftok("/", v), { name: "TypeError", message: /project id/ });
      assert.throws(() => set.getValue(v), { name: "TypeError", message: /index/ });
      assert.throws(() => set.setValue(0, v), { name: "TypeError", message: /value/ });
      assert.throws(() => set.setValue(v, 0), { name: "TypeError", message: /index/ });
      assert.throws(() => set.tryOp([{ index: v, delta: 1 }]), {
        name: "TypeError",
        message: /index/,
      });
      assert.throws(() => set.tryOp([{ index: 0, delta: v }]), {
        name: "TypeError",
        message: /delta/,
      });
      await assert.rejects(queue.send(v, ""), { name: "TypeError", message: /type/ });
      if (value !== null) { // an option of null is taken as not given
        await assert.rejects(queue.receive({ type: v, noWait: true }), {
          name: "TypeError",
          message: /type/,
        });
      }
      assert.throws(() => attachment.read(v, 1), { name: "TypeError", message: /offset/ });
      assert.throws(() => attachment.read(0, v), { name: "TypeError", message: /length/ });
    }
    for (const operation of [undefined, null, 1, "op", Symbol("op")]) {
      assert.throws(() => set.tryOp([operation as never]), {
        name: "TypeError",
        message: /operation/,
      });
      await assert.rejects(set.op([operation as never]), {
        name: "TypeError",
        message: /operation/,
      });
    }
    assert.deepEqual(set.values, [0, 0], "nothing was applied");
  },
);

ipcTest(
  "semaphore set flags must be booleans: noWait: 1 never turns a wait into a spin",
  async () => {
    using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
    for (const flag of [1, "true", "false", null, {}]) {
      assert.throws(() => set.tryOp([{ index: 0, delta: -1, noWait: flag as never }]), {
        name: "TypeError",
        message: /noWait/,
      });
      await assert.rejects(set.op([{ index: 0, delta: -1, undo: flag as never }]), {
        name: "TypeError",
        message: /undo/,
      });
    }
  },
);

ipcTest("System V constructors are private: JavaScript cannot build a handle from garbage", () => {
  const classes = { SysVSharedMemory, SysVSemaphoreSet, SysVMessageQueue, SysVAttachment };
  const garbage = [
    [-0, "", 1, ""],
    ["", 0, 0, 2n ** 32n],
    [1e15, 0, true],
    // An attachment over an arbitrary address would entomb (MAP_FIXED) that range on detach.
    [Deno.UnsafePointer.create(0x10000n), 0, true, "forged"],
  ];
  for (const [name, Class] of Object.entries(classes)) {
    for (const args of garbage) {
      assert.throws(
        () => new (Class as unknown as new (...args: unknown[]) => unknown)(...args),
        { name: "TypeError", message: new RegExp(name) },
      );
    }
  }
});

/** CPU time this process has used, in ms (utime + stime of /proc/self/stat, in 10 ms ticks). */
function cpuMs(): number {
  const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

ipcTest(
  "op() waits with the operations it checked: emptying the array meanwhile neither spins nor changes the wait",
  async () => {
    using set = SysVSemaphoreSet.create(IPC_PRIVATE, 1);
    const operations = [{ index: 0, delta: -1 }];
    const pending = set.op(operations, { timeout: 10_000 });
    operations.length = 0; // the kernel must still get the one operation checked, never 0
    const before = cpuMs();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const used = cpuMs() - before;
    set.tryOp([{ index: 0, delta: 1 }]);
    await pending;
    assert.deepEqual(set.values, [0]);
    assert.ok(used < 200, `the wait used ${used} ms of CPU in 500 ms: it spun`);
  },
);

ipcTest(
  "send() of a message whose buffer was transferred away is a TypeError naming why",
  async () => {
    using queue = SysVMessageQueue.create(IPC_PRIVATE);
    const bytes = new Uint8Array([1, 2, 3]);
    bytes.buffer.transfer();
    await assert.rejects(queue.send(1, bytes), { name: "TypeError", message: /transferred/ });
    assert.equal(queue.stat().messages, 0);
  },
);
