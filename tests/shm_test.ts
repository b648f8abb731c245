import assert from "node:assert/strict";
import { isSystemError, Mapping, Mutex, OwnedFd, Semaphore, SharedMemory } from "../mod.ts";
import { F_DUPFD_CLOEXEC, F_GETFD } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import {
  assertSucceeded,
  canMountTmpfs,
  collect,
  fixture,
  ipcTest,
  runDeno,
  runInSmallShm,
  spawnDeno,
  thrown,
  uniqueName,
} from "./helpers.ts";

const peer = fixture("shm_peer.ts");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function writeText(bytes: Uint8Array, text: string): void {
  encoder.encodeInto(`${text}\0`, bytes);
}

function readText(bytes: Uint8Array): string {
  return decoder.decode(bytes.subarray(0, bytes.indexOf(0)));
}

function existsInDevShm(name: string): boolean {
  try {
    Deno.statSync(`/dev/shm${name}`);
    return true;
  } catch {
    return false;
  }
}

ipcTest("SharedMemory.create() makes a zero-filled segment of the given size", () => {
  const name = uniqueName("create");
  using memory = SharedMemory.create(name, { size: 10_000 });
  assert.equal(memory.name, name);
  assert.equal(memory.size, 10_000);
  assert.equal(memory.bytes.length, 10_000);
  assert.equal(memory.buffer.byteLength, 10_000);
  assert.equal(memory.readOnly, false);
  assert.ok(memory.bytes.every((byte) => byte === 0));
  assert.equal(Deno.statSync(`/dev/shm${name}`).size, 10_000);
  assert.equal(Deno.statSync(`/dev/shm${name}`).mode! & 0o777, 0o600);
});

ipcTest(
  "a child process opens a segment by name, reads the parent's text and answers",
  async () => {
    const name = uniqueName("echo");
    using memory = SharedMemory.create(name, { size: 4096 });
    writeText(memory.bytes, "hello from the parent");
    const output = assertSucceeded(await runDeno(peer, ["echo-name", name]));
    assert.equal(output.stdout.trim(), "hello from the parent");
    assert.match(readText(memory.bytes.subarray(1024)), /^child \d+ heard: hello from the parent$/);
  },
);

ipcTest(
  "two processes each add 1,000,000 with Atomics.add to one cell: the total is exact",
  async () => {
    const name = uniqueName("atomics");
    using memory = SharedMemory.create(name, { size: 4096 });
    const adders = [0, 1].map(() => spawnDeno(peer, ["add", name, "1000000"]));
    for (const adder of adders) assertSucceeded(await collect(adder));
    const cells = new Int32Array(memory.buffer);
    assert.equal(Atomics.load(cells, 1), 2);
    assert.equal(Atomics.load(cells, 0), 2_000_000);
  },
);

ipcTest("an anonymous segment's inherited descriptor is visible in a child", async () => {
  using memory = SharedMemory.anonymous({ size: 4096 });
  assert.equal(memory.name, null);
  writeText(memory.bytes, "passed by descriptor");
  using handed = new OwnedFd(memory.fd).dup();
  assert.equal(handed.inheritable, false);
  handed.inheritable = true;
  const output = assertSucceeded(await runDeno(peer, ["echo-fd", String(handed.fd)]));
  assert.equal(output.stdout.trim(), "passed by descriptor");
  assert.match(readText(memory.bytes.subarray(1024)), /heard: passed by descriptor$/);
});

ipcTest("a descriptor that is not inheritable does not reach a child", async () => {
  using memory = SharedMemory.anonymous({ size: 4096 });
  // A high number, which the child's runtime has no reason to open for itself (a low one could
  // be open there by chance, for something else).
  using high = new OwnedFd(libc().fcntl(memory.fd, F_DUPFD_CLOEXEC, 900));
  assert.ok(high.fd >= 900 && !high.inheritable);
  const output = await runDeno(peer, ["echo-fd", String(high.fd)]);
  assert.notEqual(output.code, 0);
  assert.match(output.stderr, /BadResource: Cannot map shared memory from file descriptor \d+/);
});

ipcTest("SharedMemory.fromFd() owns the descriptor on success and leaves it on failure", () => {
  using memory = SharedMemory.anonymous({ size: 64 });
  const copy = new OwnedFd(memory.fd).dup();
  const mapped = SharedMemory.fromFd(copy);
  assert.equal(copy.closed, true, "ownership moved to the SharedMemory");
  mapped.bytes[3] = 3;
  assert.equal(memory.bytes[3], 3);
  mapped.close();

  const name = uniqueName("fromfd");
  using writer = SharedMemory.create(name, { size: 64 });
  using reader = SharedMemory.open(name, { readOnly: true });
  using readOnlyCopy = new OwnedFd(reader.fd).dup();
  assert.throws(
    () => SharedMemory.fromFd(readOnlyCopy, { readOnly: false }),
    Deno.errors.PermissionDenied,
  );
  assert.equal(readOnlyCopy.closed, false, "a failed fromFd leaves the descriptor with its owner");
  assert.equal(writer.closed, false);
});

ipcTest("opening a missing name is NotFound with code, errno, syscall and objectName", () => {
  const name = uniqueName("missing");
  const error = thrown(() => SharedMemory.open(name));
  assert.ok(error instanceof Deno.errors.NotFound);
  assert.ok(isSystemError(error));
  assert.equal(error.code, "ENOENT");
  assert.equal(error.errno, 2);
  assert.equal(error.syscall, "shm_open");
  assert.equal(error.objectName, name);
  assert.equal(error.message, `Cannot open shared memory "${name}": not found (ENOENT)`);
});

ipcTest("creating an existing name is AlreadyExists and leaves the first segment intact", () => {
  const name = uniqueName("twice");
  using first = SharedMemory.create(name, { size: 64 });
  first.bytes[0] = 7;
  assert.throws(
    () => SharedMemory.create(name, { size: 64 }),
    (error: unknown) =>
      error instanceof Deno.errors.AlreadyExists && isSystemError(error) &&
      error.code === "EEXIST" &&
      error.message === `Cannot create shared memory "${name}": already exists (EEXIST)`,
  );
  assert.equal(first.bytes[0], 7);
  assert.ok(existsInDevShm(name));
});

ipcTest("bad names are a TypeError that names the rule, before any syscall", () => {
  const cases: [unknown, RegExp][] = [
    ["no-slash", /must start with "\/"/],
    ["/a/b", /no "\/" after the leading one/],
    ["/nul\0inside", /no NUL/],
    ["/", /needs a name after/],
    ["/.", /needs a name after/],
    ["/..", /needs a name after/],
    [`/${"x".repeat(255)}`, /255 bytes after the "\/", more than the 254 allowed/],
    [42, /must be a string/],
  ];
  for (const [name, rule] of cases) {
    for (
      const call of [
        () => SharedMemory.create(name as string, { size: 64 }),
        () => SharedMemory.open(name as string),
        () => SharedMemory.unlink(name as string),
      ]
    ) {
      assert.throws(
        call,
        (error: unknown) => error instanceof TypeError && rule.test(error.message),
      );
    }
  }
  // 254 bytes is the longest name allowed; multi-byte characters count in bytes.
  const longest = `/${uniqueName("l").slice(1).padEnd(254, "x")}`;
  SharedMemory.create(longest, { size: 64 }).close();
  assert.throws(() => SharedMemory.create(`/${"é".repeat(128)}`, { size: 64 }), TypeError);
});

ipcTest("bad sizes and modes are a TypeError or RangeError, and create no name", () => {
  const name = uniqueName("badsize");
  for (const size of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => SharedMemory.create(name, { size }), RangeError);
    assert.throws(() => SharedMemory.anonymous({ size }), RangeError);
  }
  assert.throws(() => SharedMemory.create(name, { size: "64" as unknown as number }), TypeError);
  assert.throws(() => SharedMemory.create(name, {} as { size: number }), TypeError);
  for (const mode of [-1, 0o1000, 1.5]) {
    assert.throws(() => SharedMemory.create(name, { size: 64, mode }), /mode .* from 0 to 0o777/);
  }
  assert.equal(existsInDevShm(name), false);
});

ipcTest(
  "a segment larger than /dev/shm fails at create with ENOSPC and leaves no name",
  async () => {
    const df = await new Deno.Command("df", { args: ["-B1", "--output=size", "/dev/shm"] })
      .output();
    const total = Number(decoder.decode(df.stdout).trim().split("\n")[1]);
    assert.ok(total > 0, "df reports the size of /dev/shm");
    const name = uniqueName("huge");
    const error = thrown(() => SharedMemory.create(name, { size: total + 2 ** 30 }));
    assert.ok(error instanceof Error && !(error instanceof Deno.errors.NotFound));
    assert.ok(isSystemError(error));
    assert.equal(error.code, "ENOSPC");
    assert.equal(error.syscall, "posix_fallocate");
    assert.match(
      error.message,
      /no space left on device \(ENOSPC\): .* asked, .* free of .* in \/dev\/shm/,
    );
    assert.equal(existsInDevShm(name), false);
  },
);

ipcTest("after close, views are empty and every use throws BadResource without crashing", () => {
  using memory = SharedMemory.create(uniqueName("closed"), { size: 4096 });
  const bytes = memory.bytes;
  const words = new Int32Array(memory.buffer);
  const buffer = memory.buffer;
  bytes[0] = 1;
  memory.close();
  memory.close(); // twice is harmless
  assert.equal(memory.closed, true);
  assert.equal(bytes.length, 0);
  assert.equal(words.length, 0);
  assert.equal(buffer.byteLength, 0);
  assert.equal(bytes[0], undefined); // reads nothing, touches no unmapped memory
  bytes[0] = 5; // a write to a detached view goes nowhere
  for (
    const use of [
      () => memory.bytes,
      () => memory.buffer,
      () => memory.fd,
      () => memory.mapping,
      () => memory.resize(8192),
      () => memory.unlink(),
    ]
  ) {
    assert.throws(use, Deno.errors.BadResource);
  }
});

ipcTest("the creator removes the name on close; an opener or persist keeps it", () => {
  const owned = uniqueName("owned");
  using creator = SharedMemory.create(owned, { size: 64 });
  SharedMemory.open(owned).close();
  assert.ok(existsInDevShm(owned), "closing an opener keeps the name");
  creator.close();
  assert.equal(existsInDevShm(owned), false, "closing the creator removes it");

  const kept = uniqueName("persist");
  SharedMemory.create(kept, { size: 64, persist: true }).close();
  assert.ok(existsInDevShm(kept));
  using reopened = SharedMemory.open(kept);
  assert.equal(reopened.size, 64);
  SharedMemory.unlink(kept);
  assert.equal(existsInDevShm(kept), false);
  assert.throws(() => SharedMemory.unlink(kept), Deno.errors.NotFound);
});

ipcTest("unlink() removes the name at once and the handle stays usable", () => {
  const name = uniqueName("unlink");
  using memory = SharedMemory.create(name, { size: 64 });
  memory.unlink();
  assert.equal(existsInDevShm(name), false);
  memory.bytes[0] = 1;
  assert.equal(memory.bytes[0], 1);
  using anonymous = SharedMemory.anonymous({ size: 64 });
  assert.throws(() => anonymous.unlink(), /no name/);
});

ipcTest("the creator's close tolerates a name someone else removed", () => {
  const name = uniqueName("gone");
  using memory = SharedMemory.create(name, { size: 64 });
  SharedMemory.unlink(name);
  memory.close();
});

ipcTest("resize() grows and shrinks, keeps the contents and detaches old views", () => {
  const name = uniqueName("resize");
  using memory = SharedMemory.create(name, { size: 4096 });
  memory.bytes[100] = 42;
  const before = memory.bytes;
  memory.resize(3 * 4096);
  assert.equal(before.length, 0, "the old view is detached");
  assert.equal(memory.size, 3 * 4096);
  assert.equal(memory.bytes[100], 42);
  memory.bytes[3 * 4096 - 1] = 9;
  assert.equal(Deno.statSync(`/dev/shm${name}`).size, 3 * 4096);
  const other = SharedMemory.open(name);
  assert.equal(other.bytes[3 * 4096 - 1], 9, "another handle sees the new pages");
  other.close(); // its views would reach past the new end: resize refuses while it is open
  memory.resize(100);
  assert.equal(memory.bytes.length, 100);
  assert.equal(memory.bytes[99], 0);
  assert.throws(() => memory.resize(0), RangeError);
});

ipcTest("a read-only handle never changes the segment, and a stray write does not crash", () => {
  const name = uniqueName("readonly");
  using writer = SharedMemory.create(name, { size: 8192 });
  using reader = SharedMemory.open(name, { readOnly: true });
  assert.equal(reader.readOnly, true);
  writer.bytes[0] = 1;
  assert.equal(reader.bytes[0], 1, "the reader follows the writer");
  reader.bytes[4096] = 99; // stays in this handle's private copy of that page
  assert.equal(writer.bytes[4096], 0);
  assert.throws(() => reader.resize(16384), Deno.errors.PermissionDenied);
  using fromReadOnlyFd = SharedMemory.fromFd(new OwnedFd(reader.fd).dup());
  assert.equal(fromReadOnlyFd.readOnly, true, "fromFd follows the descriptor's access mode");
});

ipcTest("a child without --allow-ffi gets the clear message", async () => {
  const name = uniqueName("noffi");
  using _memory = SharedMemory.create(name, { size: 64 });
  const output = await runDeno(peer, ["open", name], { flags: [] });
  assert.notEqual(output.code, 0);
  assert.match(output.stderr, /NotCapable: @posix\/ipc needs --allow-ffi to call libc/);
});

ipcTest("a segment dropped without close() is released by the garbage collector", async () => {
  const name = uniqueName("forgotten");
  const output = assertSucceeded(
    await runDeno(peer, ["forget", name], {
      flags: ["--allow-all", "--v8-flags=--expose-gc"],
    }),
  );
  assert.equal(output.stdout.trim(), "false", "the name is gone once the handle is collected");
  assert.equal(existsInDevShm(name), false);
});

/** How many bytes of the file are allocated, from its block count. */
function allocated(path: string): number {
  return Deno.statSync(path).blocks! * 512;
}

ipcTest("SharedMemory.anonymous() of 1e15 bytes fails with ENOMEM, not EBADF", () => {
  const error = thrown(() => SharedMemory.anonymous({ size: 1e15 }));
  assert.ok(isSystemError(error), String(error));
  assert.equal(error.code, "ENOMEM", error.message);
  assert.equal(error.syscall, "mmap");
});

ipcTest(
  "close() after the buffer was transferred away releases the descriptor, the name and the mapping",
  () => {
    const name = uniqueName("transferred");
    const memory = SharedMemory.create(name, { size: 4096 });
    const descriptor = memory.fd;
    const moved = memory.buffer.transfer();
    memory.close(); // threw a TypeError and released nothing
    assert.equal(memory.closed, true);
    assert.equal(existsInDevShm(name), false, "the name is removed");
    assert.equal(moved.byteLength, 4096, "the transferred buffer keeps its length");
    // ipcTest fails if the descriptor or a mapping of /dev/shm is left; say which, to be plain:
    const target = (() => {
      try {
        return Deno.readLinkSync(`/proc/self/fd/${descriptor}`);
      } catch {
        return undefined;
      }
    })();
    assert.ok(!target?.includes(name), `fd ${descriptor} still points to ${target}`);
    assert.ok(!Deno.readTextFileSync("/proc/self/maps").includes(name), "still mapped");
  },
);

const escape = fixture("shm_escape.ts");
for (
  const [which, expected] of [
    ["gc", "0,0"],
    ["close", "0,0"],
    ["clone-gc", "0,0"],
    ["worker-close", "0,0"],
    ["worker-gc", "0,0"],
    ["mapping-worker-close", "0,0\n7,7"],
    ["views-gc", "7,7"],
  ]
) {
  ipcTest(
    `a buffer transferred away reads zeros after its handle is gone, never crashing (${which})`,
    async () => {
      const output = await runDeno(escape, [which!], {
        flags: ["--allow-ffi", "--v8-flags=--expose-gc"],
        timeout: 60_000,
      });
      assert.equal(output.code, 0, `exit ${output.code} (139: SIGSEGV)\n${output.stderr}`);
      assert.equal(output.stdout.trim(), expected);
    },
  );
}

ipcTest(
  "SharedMemory.open() reserves the pages of a sparse segment that another program made",
  () => {
    const name = uniqueName("sparse");
    const path = `/dev/shm${name}`;
    Deno.writeFileSync(path, new Uint8Array(), { mode: 0o600 });
    try {
      Deno.truncateSync(path, 1 << 20); // what `truncate -s 1M` or Python's shared_memory leave
      assert.equal(allocated(path), 0);
      using reader = SharedMemory.open(name, { readOnly: true });
      assert.equal(allocated(path), 0, "a read-only handle changes nothing, it only checks room");
      using writer = SharedMemory.open(name);
      assert.ok(allocated(path) >= 1 << 20, "a writable handle reserves every page");
      writer.bytes.fill(7);
      assert.equal(reader.bytes[(1 << 20) - 1], 7);
    } finally {
      Deno.removeSync(path);
    }
  },
);

ipcTest("SharedMemory.fromFd() reserves a writable sparse segment too", () => {
  using memory = SharedMemory.anonymous({ size: 1 << 20 }); // memfd: sparse, lazily backed
  const path = `/proc/self/fd/${memory.fd}`;
  assert.equal(allocated(path), 0);
  using child = SharedMemory.fromFd(new OwnedFd(memory.fd).dup()); // as a child would
  assert.ok(allocated(path) >= 1 << 20);
  assert.equal(child.size, 1 << 20);
});

ipcTest(
  "a sparse segment larger than the free space of /dev/shm fails at open with ENOSPC, not SIGBUS",
  async () => {
    if (!canMountTmpfs()) {
      console.log("  skipped: needs root and unshare to mount a 1 MiB /dev/shm of its own");
      return;
    }
    // A private mount namespace: the small /dev/shm and the sparse /x exist only for the child.
    const output = await runInSmallShm(fixture("shm_sparse.ts"), "1M", {
      setup: "truncate -s 8M /dev/shm/x",
    });
    assert.equal(output.code, 0, `exit ${output.code} (135: SIGBUS)\n${output.stderr}`);
    assert.deepEqual(output.stdout.trim().split("\n"), [
      "open ENOSPC",
      "open-read-only ENOSPC",
      "from-fd ENOSPC",
      "from-fd-read-only ENOSPC",
    ]);
  },
);

const resizing = fixture("shm_resize.ts");
for (const which of ["semaphore", "mutex", "grown", "other-handle"]) {
  ipcTest(
    `resize() refuses to shrink below a placed object, which keeps working (${which})`,
    async () => {
      const output = await runDeno(resizing, [which], { timeout: 60_000 });
      assert.equal(output.code, 0, `exit ${output.code} (135: SIGBUS)\n${output.stderr}`);
      const lines = output.stdout.trim().split("\n");
      assert.ok(lines.includes("Busy EBUSY"), output.stdout);
      assert.match(lines.at(-1)!, /^(value 1|owner null)$/);
    },
  );
}

ipcTest("resize() names what it would cut off, and shrinks once that is closed", () => {
  using memory = SharedMemory.anonymous({ size: 3 * 4096 });
  const semaphore = Semaphore.init(memory, 8192);
  const error = thrown(() => memory.resize(4096));
  assert.ok(error instanceof Deno.errors.Busy && isSystemError(error));
  assert.equal(error.code, "EBUSY");
  assert.match(error.message, /a semaphore at offset 8192 \(to byte 8224\) still uses it/);
  assert.equal(memory.size, 3 * 4096, "nothing changed");
  memory.resize(8224); // up to its end is fine
  semaphore.close();
  memory.resize(4096);

  const mutex = Mutex.init(memory, 2048);
  assert.throws(() => memory.resize(2048), /a mutex at offset 2048/);
  mutex.close();

  const view = Mapping.fromFd(memory.fd, { write: true, offset: 1000 });
  assert.throws(() => memory.resize(2000), /a mapping of 3096 bytes at offset 1000/);
  view.close();
  memory.resize(2000);
  assert.equal(memory.bytes.length, 2000);
});

ipcTest("a close() that failed still removes the name, unmaps, and is not retried", () => {
  const name = uniqueName("reclose");
  using memory = SharedMemory.create(name, { size: 4096 });
  const c = libc();
  const number = memory.fd;
  c.close(number); // behind the handle's back: its close() now fails with EBADF
  assert.throws(() => memory.close(), Deno.errors.BadResource);
  assert.equal(existsInDevShm(name), false, "the name went all the same");
  assert.ok(!Deno.readTextFileSync("/proc/self/maps").includes(name), "and the mapping");
  const reused = c.fcntl(1, F_DUPFD_CLOEXEC, 0); // takes the lowest free number: the old one
  try {
    assert.equal(reused, number);
    memory.close();
    assert.ok(c.fcntl(reused, F_GETFD, 0) >= 0, "the new descriptor is still open");
  } finally {
    c.close(reused);
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

ipcTest(
  "new SharedMemory() from JavaScript is a TypeError and builds nothing a finalizer closes",
  () => {
    const Unchecked = SharedMemory as unknown as new (...args: unknown[]) => SharedMemory;
    for (const args of [["", 0, 1e15], [null, { fd: 0, ownedName: null }, {}, false], []]) {
      assert.throws(
        () => new Unchecked(...args),
        failsWith(TypeError, "Illegal constructor: SharedMemory"),
      );
    }
  },
);

ipcTest(
  "SharedMemory options of the wrong shape are TypeErrors naming them, before any call",
  () => {
    const name = uniqueName("options");
    const hostile = [null, 5, "size", [], () => {}];
    for (const bad of hostile) {
      assert.throws(
        () => SharedMemory.create(name, bad as never),
        failsWith(TypeError, "SharedMemory.create() options"),
      );
      assert.throws(
        () => SharedMemory.open(name, bad as never),
        failsWith(TypeError, "open() options"),
      );
      assert.throws(
        () => SharedMemory.anonymous(bad as never),
        failsWith(TypeError, "anonymous() options"),
      );
    }
    using memory = SharedMemory.anonymous({ size: 64 });
    for (const bad of hostile) {
      assert.throws(
        () => SharedMemory.fromFd(memory.fd, bad as never),
        failsWith(TypeError, "fromFd()"),
      );
    }
    for (const bad of ["false", 0, 1, null, {}]) {
      assert.throws(
        () => SharedMemory.create(name, { size: 64, persist: bad as never }),
        failsWith(TypeError, "persist"),
      );
      assert.throws(
        () => SharedMemory.open(name, { readOnly: bad as never }),
        failsWith(TypeError, "readOnly"),
      );
      assert.throws(
        () => SharedMemory.fromFd(memory.fd, { readOnly: bad as never }),
        failsWith(TypeError, "readOnly"),
      );
    }
    for (const bad of [Object.create(null), Symbol.iterator, { toString: null }]) {
      assert.throws(
        () => SharedMemory.create(bad, { size: 64 }),
        failsWith(TypeError, "must be a string"),
      );
      assert.throws(() => SharedMemory.unlink(bad), failsWith(TypeError, "must be a string"));
    }
  },
);
