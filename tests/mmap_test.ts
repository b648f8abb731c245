import assert from "node:assert/strict";
import { isSystemError, mapFile, Mapping, pipe, SharedMemory } from "../mod.ts";
import { SEEK_CUR } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { assertSucceeded, fixture, ipcTest, runDeno, tempFile, thrown } from "./helpers.ts";

const peer = fixture("map_peer.ts");
const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

ipcTest("MAP_SHARED writes reach the file and another process", async () => {
  const path = tempFile("aaaaaaaaaa");
  try {
    using mapping = mapFile(path, { write: true });
    assert.equal(mapping.shared, true);
    mapping.bytes.set(new TextEncoder().encode("shared"));
    assert.equal(Deno.readTextFileSync(path), "sharedaaaa");
    const output = assertSucceeded(await runDeno(peer, ["read", path], { flags: ["-A"] }));
    assert.equal(output.stdout.trim(), "sharedaaaa");
    assertSucceeded(await runDeno(peer, ["write", path, "CHILD"], { flags: ["-A"] }));
    assert.equal(text(mapping.bytes), "CHILDdaaaa", "the child's write shows in our mapping");
    mapping.sync();
    mapping.sync({ async: true });
  } finally {
    Deno.removeSync(path);
  }
});

ipcTest("MAP_PRIVATE writes reach neither the file nor another process", async () => {
  const path = tempFile("bbbbbbbbbb");
  try {
    using mapping = mapFile(path, { write: true, private: true });
    assert.equal(mapping.shared, false);
    mapping.bytes.set(new TextEncoder().encode("private"));
    assert.equal(text(mapping.bytes), "privatebbb");
    assert.equal(Deno.readTextFileSync(path), "bbbbbbbbbb");
    const output = assertSucceeded(await runDeno(peer, ["read", path], { flags: ["-A"] }));
    assert.equal(output.stdout.trim(), "bbbbbbbbbb");
  } finally {
    Deno.removeSync(path);
  }
});

ipcTest("a mapping without write is copy-on-write: a stray write never reaches the file", () => {
  const path = tempFile("cccc");
  try {
    using mapping = mapFile(path);
    assert.equal(mapping.shared, false);
    mapping.bytes[0] = 0x58; // no crash, and the file keeps its bytes
    assert.equal(Deno.readTextFileSync(path), "cccc");
  } finally {
    Deno.removeSync(path);
  }
});

ipcTest("an offset off a page boundary is aligned internally", () => {
  const contents = new Uint8Array(3 * 4096 + 100).map((_, i) => i % 251);
  const path = tempFile(contents);
  try {
    for (const offset of [0, 1, 4095, 4096, 5000, 3 * 4096 + 99]) {
      using mapping = mapFile(path, { offset });
      assert.equal(mapping.length, contents.length - offset);
      assert.deepEqual(mapping.bytes, contents.subarray(offset));
    }
    using middle = mapFile(path, { offset: 5000, length: 10, write: true });
    middle.bytes.fill(0);
    assert.deepEqual(Deno.readFileSync(path).subarray(5000, 5010), new Uint8Array(10));
    assert.equal(Deno.readFileSync(path)[5010], 5010 % 251);
  } finally {
    Deno.removeSync(path);
  }
});

ipcTest("ranges past the end, empty files and missing files are clear errors, not SIGBUS", () => {
  const path = tempFile("0123456789");
  const empty = tempFile("");
  try {
    assert.throws(
      () => mapFile(path, { offset: 10 }),
      /offset 10 is at or past its end \(size 10\)/,
    );
    assert.throws(
      () => mapFile(path, { offset: 5, length: 6 }),
      (error: unknown) =>
        error instanceof RangeError && /reach past its end.*SIGBUS/.test(error.message),
    );
    assert.throws(() => mapFile(path, { length: 0 }), /length 0 must be a positive integer/);
    assert.throws(() => mapFile(path, { offset: -1 }), RangeError);
    assert.throws(() => mapFile(path, { offset: 1.5 }), RangeError);
    assert.throws(() => mapFile(empty), Deno.errors.InvalidData);
    const missing = thrown(() => mapFile(`${path}.missing`));
    assert.ok(missing instanceof Deno.errors.NotFound && isSystemError(missing));
    assert.equal(missing.syscall, "open");
    assert.equal(missing.objectName, `${path}.missing`);
    assert.throws(() => mapFile(""), TypeError);
    assert.throws(() => mapFile("a\0b"), TypeError);
    assert.throws(() => mapFile(new URL("https://example.com/")), /only file: URLs/);
    using byUrl = mapFile(new URL(`file://${path}`));
    assert.equal(byUrl.length, 10);
  } finally {
    Deno.removeSync(path);
    Deno.removeSync(empty);
  }
});

ipcTest(
  "mapFile() needs --allow-read, and --allow-write for a shared writable mapping",
  async () => {
    const path = tempFile("secret");
    try {
      const noRead = await runDeno(peer, ["read", path], { flags: ["--allow-ffi"] });
      assert.notEqual(noRead.code, 0);
      assert.match(noRead.stderr, new RegExp(`NotCapable: Requires read access to "${path}"`));

      const readOnly = await runDeno(peer, ["read", path], {
        flags: ["--allow-ffi", `--allow-read=${path}`],
      });
      assert.equal(assertSucceeded(readOnly).stdout.trim(), "secret");

      const noWrite = await runDeno(peer, ["write", path, "x"], {
        flags: ["--allow-ffi", `--allow-read=${path}`],
      });
      assert.match(noWrite.stderr, new RegExp(`NotCapable: Requires write access to "${path}"`));
      assert.equal(Deno.readTextFileSync(path), "secret");
    } finally {
      Deno.removeSync(path);
    }
  },
);

ipcTest("after close, views are empty and every use throws BadResource", () => {
  const path = tempFile("dddd");
  try {
    using mapping = mapFile(path, { write: true });
    const bytes = mapping.bytes;
    mapping.close();
    mapping.close();
    assert.equal(mapping.closed, true);
    assert.equal(bytes.length, 0);
    bytes[0] = 1;
    for (
      const use of [
        () => mapping.bytes,
        () => mapping.buffer,
        () => mapping.unsafePointer,
        () => mapping.sync(),
        () => mapping.advise("random"),
      ]
    ) {
      assert.throws(use, Deno.errors.BadResource);
    }
    assert.equal(Deno.readTextFileSync(path), "dddd");
  } finally {
    Deno.removeSync(path);
  }
});

ipcTest("advise() passes known advice and rejects unknown advice", () => {
  using memory = SharedMemory.anonymous({ size: 8192 });
  for (const advice of ["normal", "random", "sequential", "willneed", "dontneed"] as const) {
    memory.mapping.advise(advice);
  }
  assert.throws(() => memory.mapping.advise("soon" as "normal"), /Cannot advise "soon"/);
  // Prototype keys are no advice: they were looked up on a plain object and reached madvise.
  for (const key of ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf"]) {
    assert.throws(
      () => memory.mapping.advise(key as "normal"),
      (error: unknown) => error instanceof TypeError && error.message.includes(`"${key}"`),
    );
  }
  assert.throws(() => memory.mapping.advise(4 as unknown as "normal"), TypeError);
});

ipcTest("Mapping.fromFd() maps part of a descriptor, which may be closed afterwards", () => {
  using memory = SharedMemory.anonymous({ size: 3 * 4096 });
  memory.bytes[2 * 4096 + 1] = 77;
  using tail = Mapping.fromFd(memory.fd, { offset: 2 * 4096, write: true });
  assert.equal(tail.length, 4096);
  assert.equal(tail.bytes[1], 77);
  tail.bytes[2] = 88;
  assert.equal(memory.bytes[2 * 4096 + 2], 88);
  assert.throws(() => Mapping.fromFd(-1), RangeError);
  assert.throws(() => Mapping.fromFd(memory.fd, { offset: 4 * 4096 }), RangeError);
});

ipcTest("mapping a directory is IsADirectory, with code, syscall and objectName", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const error = thrown(() => mapFile(dir));
    assert.ok(error instanceof Deno.errors.IsADirectory && isSystemError(error), String(error));
    assert.equal(error.code, "EISDIR");
    assert.equal(error.objectName, dir);
    assert.match(error.message, /is a directory \(EISDIR\): only regular files/);
  } finally {
    Deno.removeSync(dir);
  }
});

ipcTest("mapping a device or a pipe is a clear ENODEV error that names its type", () => {
  for (const path of ["/dev/null", "/dev/zero"]) {
    const error = thrown(() => mapFile(path));
    assert.ok(isSystemError(error) && error.code === "ENODEV", String(error));
    assert.match(error.message, /it is a character device; only regular files/);
  }
  using p = pipe();
  const error = thrown(() => Mapping.fromFd(p.reader.fd));
  assert.ok(isSystemError(error) && error.code === "ENODEV", String(error));
  assert.match(error.message, /it is a FIFO/);
});

ipcTest("mapping a FIFO with no writer fails at once instead of blocking in open()", async () => {
  const dir = Deno.makeTempDirSync();
  const fifo = `${dir}/fifo`;
  try {
    const made = new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
    assert.ok(made.success, "mkfifo");
    const output = await runDeno(fixture("mmap_special.ts"), [fifo], {
      flags: ["--allow-ffi", `--allow-read=${fifo}`],
      timeout: 30_000,
    });
    assert.equal(output.signal, null, "the child hung in open() and was killed");
    assertSucceeded(output);
    assert.match(output.stdout, /^IpcError ENODEV\n.*it is a FIFO/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

ipcTest("Mapping.fromFd() leaves the descriptor's file offset where it was", () => {
  using memory = SharedMemory.anonymous({ size: 8192 });
  const c = libc();
  assert.equal(c.lseek(memory.fd, 0n, SEEK_CUR), 0n);
  using _mapping = Mapping.fromFd(memory.fd, { offset: 100 });
  assert.equal(c.lseek(memory.fd, 0n, SEEK_CUR), 0n, "lseek(SEEK_END) moved it to the end");
});

ipcTest("close() after the buffer was transferred away unmaps the file without throwing", () => {
  const path = tempFile("eeee");
  try {
    const mapping = mapFile(path, { write: true });
    const moved = mapping.buffer.transfer();
    mapping.close(); // threw a TypeError and kept the file mapped
    assert.equal(mapping.closed, true);
    assert.equal(moved.byteLength, 4);
    assert.ok(!Deno.readTextFileSync("/proc/self/maps").includes(path), "the file is unmapped");
  } finally {
    Deno.removeSync(path);
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

ipcTest("new Mapping() from JavaScript is a TypeError", () => {
  const Unchecked = Mapping as unknown as new (...args: unknown[]) => Mapping;
  for (const args of [[{}, null, 0, 0], [null, { identity: "x", offset: 0, skip: 0, length: 1 }]]) {
    assert.throws(
      () => new Unchecked(...args),
      failsWith(TypeError, "Illegal constructor: Mapping"),
    );
  }
});

ipcTest("mapping options and arguments of the wrong type are TypeErrors of their own", () => {
  using memory = SharedMemory.anonymous({ size: 8192 });
  for (const bad of [null, 5, "x", [], () => {}]) {
    assert.throws(
      () => Mapping.fromFd(memory.fd, bad as never),
      failsWith(TypeError, "fromFd() options"),
    );
    assert.throws(
      () => mapFile("/dev/null", bad as never),
      failsWith(TypeError, "mapFile() options"),
    );
    assert.throws(() => memory.mapping.sync(bad as never), failsWith(TypeError, "sync() options"));
  }
  const hostile = [Symbol("s"), Object.create(null), { valueOf: () => 1 }, 1n, "4096"];
  for (const bad of hostile) {
    assert.throws(
      () => Mapping.fromFd(memory.fd, { offset: bad as never }),
      failsWith(TypeError, "offset"),
    );
    assert.throws(
      () => Mapping.fromFd(memory.fd, { length: bad as never }),
      failsWith(TypeError, "length"),
    );
    assert.throws(
      () => Mapping.fromFd(memory.fd, { write: bad as never }),
      failsWith(TypeError, "write"),
    );
    assert.throws(() => memory.mapping.advise(bad as never), failsWith(TypeError, "use one of"));
    if (typeof bad !== "string") {
      assert.throws(() => mapFile(bad as never), failsWith(TypeError, "the path must be"));
    }
  }
  for (const bad of ["false", 0, 1]) {
    assert.throws(
      () => Mapping.fromFd(memory.fd, { private: bad as never }),
      failsWith(TypeError, "private"),
    );
    assert.throws(
      () => memory.mapping.sync({ async: bad as never }),
      failsWith(TypeError, "async"),
    );
  }
  using zero = Mapping.fromFd(memory.fd, { offset: -0, length: 4096 });
  assert.equal(zero.length, 4096);
});
