import assert from "node:assert/strict";
import { createFifo, openFifo, pipe, ReadEnd, spawn, WriteEnd } from "../mod.ts";
import { fixture, ipcTest, runDeno, thrown } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Asserts that `promise` rejects with `ErrorClass` within `ms`, and returns how long it took. */
async function rejectsWithin(
  promise: Promise<unknown>,
  ErrorClass: abstract new (...args: never[]) => unknown,
  ms: number,
): Promise<number> {
  const started = performance.now();
  await assert.rejects(promise, (error: unknown) => error instanceof ErrorClass);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < ms, `took ${elapsed} ms`);
  return elapsed;
}

ipcTest("bytes written to one end come out of the other; null at end-of-file", async () => {
  using p = pipe();
  assert.equal(await p.writer.write(encoder.encode("hello")), 5);
  const buffer = new Uint8Array(64);
  const n = await p.reader.read(buffer);
  assert.equal(decoder.decode(buffer.subarray(0, n!)), "hello");
  assert.equal(await p.reader.read(new Uint8Array(0)), 0);
  p.writer.close();
  assert.equal(await p.reader.read(buffer), null);
  assert.equal(p.reader.readSync(buffer), null);
});

ipcTest("readSync and writeSync block the thread and move the bytes", () => {
  using p = pipe();
  assert.equal(p.writer.writeSync(encoder.encode("sync")), 4);
  const buffer = new Uint8Array(8);
  assert.equal(p.reader.readSync(buffer), 4);
  assert.equal(decoder.decode(buffer.subarray(0, 4)), "sync");
});

ipcTest(
  "a write larger than the pipe's buffer waits for the reader and arrives whole",
  async () => {
    using p = pipe();
    const data = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 31) % 256);
    const [written, received] = await Promise.all([
      p.writer.write(data).then((n) => (p.writer.close(), n)),
      new Response(p.reader.readable).bytes(),
    ]);
    assert.equal(written, data.length);
    assert.deepEqual(received, data);
    assert.equal(p.reader.closed, true, "the stream closes its end at end-of-file");
  },
);

ipcTest("the streams: readable and writable carry a stream of chunks", async () => {
  using p = pipe();
  const text = new Response(p.reader.readable).text();
  await ReadableStream.from(["one ", "two ", "three"]).pipeThrough(new TextEncoderStream()).pipeTo(
    p.writer.writable,
  );
  assert.equal(await text, "one two three");
  assert.equal(p.writer.closed, true);
});

ipcTest("writing to a pipe with no reader is BrokenPipe, and the process lives on", async () => {
  using p = pipe();
  p.reader.close();
  assert.throws(
    () => p.writer.writeSync(encoder.encode("x")),
    (error: unknown) =>
      error instanceof Deno.errors.BrokenPipe &&
      /broken pipe \(EPIPE\): no process has its read end open/.test(String(error)),
  );
  await assert.rejects(p.writer.write(encoder.encode("x")), Deno.errors.BrokenPipe);
});

ipcTest("read() rejects with TimedOut after its timeout, promptly", async () => {
  using p = pipe();
  const elapsed = await rejectsWithin(
    p.reader.read(new Uint8Array(8), { timeout: 150 }),
    Deno.errors.TimedOut,
    1000,
  );
  assert.ok(elapsed >= 140, `waited ${elapsed} ms`);
});

ipcTest("an abort ends a pending read within the slice, with the signal's reason", async () => {
  using p = pipe();
  const controller = new AbortController();
  const reading = p.reader.read(new Uint8Array(8), { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("stop reading")), 50);
  await assert.rejects(reading, /stop reading/);
  await assert.rejects(
    p.reader.read(new Uint8Array(8), { signal: AbortSignal.abort() }),
    /aborted/,
  );
});

ipcTest("closing an end rejects its pending read with BadResource within the slice", async () => {
  using p = pipe();
  const reading = p.reader.read(new Uint8Array(8));
  setTimeout(() => p.reader.close(), 50);
  await rejectsWithin(reading, Deno.errors.BadResource, 1000);
  assert.throws(() => p.reader.readSync(new Uint8Array(1)), Deno.errors.BadResource);
  assert.throws(() => p.reader.fd, Deno.errors.BadResource);
  p.reader.close();
});

ipcTest("a pending write ends on abort while the pipe is full", async () => {
  using p = pipe();
  const writing = p.writer.write(new Uint8Array(1024 * 1024), { signal: AbortSignal.timeout(100) });
  await rejectsWithin(writing, DOMException, 1000);
});

ipcTest(
  "end-of-file comes only when every write end is closed, a child's copy included",
  async () => {
    using p = pipe();
    const child = spawn("sleep", { args: ["0.3"], fds: { 3: p.writer } });
    p.writer.close();
    const started = performance.now();
    assert.equal(await p.reader.read(new Uint8Array(8)), null);
    assert.ok(performance.now() - started >= 200, "waited for the child's copy");
    await child.status;
  },
);

ipcTest("a child writes to the parent through a pipe end passed as its stdout", async () => {
  using p = pipe();
  const child = spawn("sh", { args: ["-c", "printf 'from the child'"], stdout: p.writer });
  p.writer.close();
  assert.equal(await new Response(p.reader.readable).text(), "from the child");
  assert.ok((await child.status).success);
});

ipcTest("bad arguments are TypeError or RangeError", async () => {
  using p = pipe();
  await assert.rejects(p.reader.read(new Uint8Array(1), { timeout: -1 }), RangeError);
  await assert.rejects(p.reader.read(new Uint8Array(1), { timeout: NaN }), RangeError);
  await assert.rejects(p.writer.write(new Uint8Array(1), { timeout: -1 }), RangeError);
  await assert.rejects(
    p.reader.read(new Uint8Array(1), { signal: "no" as unknown as AbortSignal }),
    TypeError,
  );
  assert.throws(() => new ReadEnd(-1), RangeError);
  assert.throws(() => new ReadEnd(2 ** 32 + 1), RangeError);
  assert.throws(() => new WriteEnd({} as { fd: number }), TypeError);
});

ipcTest("a FIFO connects a reader and a writer in two processes", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/fifo`;
  try {
    createFifo(path);
    assert.ok(Deno.statSync(path).isFifo);
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.throws(() => createFifo(path), Deno.errors.AlreadyExists);
    const child = spawn("sh", { args: ["-c", `printf 'through the fifo' > ${path}`] });
    using reader = await openFifo(path, "read", { timeout: 5000 });
    assert.equal(await new Response(reader.readable).text(), "through the fifo");
    assert.ok((await child.status).success);

    const catter = spawn("cat", { args: [path], stdout: "piped" });
    using writer = await openFifo(path, "write", { timeout: 5000 });
    await writer.write(encoder.encode("the other way"));
    writer.close();
    assert.equal(decoder.decode((await catter.output()).stdout), "the other way");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

ipcTest("a writer already waiting when the reader opens a FIFO loses nothing", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/fifo`;
  try {
    createFifo(path);
    for (let round = 0; round < 20; round++) {
      const writer = spawn("sh", { args: ["-c", `printf 'round ${round}' > ${path}`] });
      await new Promise((resolve) => setTimeout(resolve, 5)); // the writer blocks in open()
      using reader = await openFifo(path, "read", { timeout: 5000 });
      assert.equal(await new Response(reader.readable).text(), `round ${round}`);
      assert.ok((await writer.status).success);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

ipcTest("openFifo() for reading resolves when a writer connects, before any byte", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/fifo`;
  try {
    createFifo(path);
    const [reader, writer] = await Promise.all([
      openFifo(path, "read", { timeout: 5000 }),
      openFifo(path, "write", { timeout: 5000 }),
    ]);
    await writer.write(encoder.encode("after both opened"));
    writer.close();
    assert.equal(await new Response(reader.readable).text(), "after both opened");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

ipcTest("openFifo() waits for the other side, and gives up on timeout or abort", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/fifo`;
  try {
    createFifo(path);
    await rejectsWithin(openFifo(path, "read", { timeout: 100 }), Deno.errors.TimedOut, 1000);
    await rejectsWithin(openFifo(path, "write", { timeout: 100 }), Deno.errors.TimedOut, 1000);
    await rejectsWithin(
      openFifo(path, "read", { signal: AbortSignal.timeout(100) }),
      DOMException,
      1000,
    );
    await assert.rejects(openFifo(`${dir}/missing`, "read"), Deno.errors.NotFound);
    await assert.rejects(openFifo(`${dir}/missing`, "write"), Deno.errors.NotFound);
    await assert.rejects(openFifo(path, "both" as "read"), TypeError);
    assert.equal(thrown(() => createFifo("")) instanceof TypeError, true);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

ipcTest(
  "openFifo() leaves no thread blocked: the process exits after a timeout, an abort, or the FIFO's removal or replacement",
  async () => {
    const expected: Record<string, string> = {
      timeout: "TimedOut",
      abort: "Error",
      removed: "NotFound",
      "replaced-fifo": "NotFound",
      "replaced-file": "NotFound",
      opened: "opened",
    };
    const flags = ["--allow-ffi", "--allow-read", "--allow-write", "--allow-run=sh"];
    for (const direction of ["read", "write"]) {
      for (const [scenario, outcome] of Object.entries(expected)) {
        const label = `${direction} ${scenario}`;
        const output = await runDeno(fixture("pipe_fifo_wait.ts"), [direction, scenario], {
          flags,
          timeout: 10_000,
        });
        assert.equal(output.signal, null, `${label}: the process did not exit`);
        assert.equal(output.code, 0, `${label}: ${output.stderr}`);
        const [ended, after] = output.stdout.trim().split("\n");
        assert.equal(ended, outcome, label);
        const ms = Number(/after (\d+) ms/.exec(after ?? "")?.[1]);
        assert.ok(ms < 2000, `${label}: the wait ended after ${ms} ms`);
      }
    }
  },
);

ipcTest("openFifo() refuses what is not a FIFO, before waiting", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/file`, "plain");
    for (const direction of ["read", "write"] as const) {
      await assert.rejects(
        openFifo(`${dir}/file`, direction),
        (error: unknown) =>
          error instanceof Deno.errors.InvalidData &&
          /Cannot open FIFO ".*\/file": it is a regular file, not a FIFO/.test(String(error)),
      );
      await assert.rejects(openFifo(dir, direction), /it is a directory, not a FIFO/);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Whether a descriptor of this process has O_NONBLOCK set, from /proc/self/fdinfo. */
function isNonBlocking(fd: number): boolean {
  const flags = /flags:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`))![1]!;
  return (parseInt(flags, 8) & 0o4000) !== 0;
}

ipcTest("both ends of an opened FIFO start in blocking mode, as a pipe's do", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/fifo`;
  try {
    createFifo(path);
    const [reader, writer] = await Promise.all([
      openFifo(path, "read", { timeout: 5000 }),
      openFifo(path, "write", { timeout: 5000 }),
    ]);
    using _reader = reader;
    using _writer = writer;
    assert.equal(isNonBlocking(reader.fd), false);
    assert.equal(isNonBlocking(writer.fd), false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

ipcTest(
  "write, writeSync and writable take strings as UTF-8, and refuse what is not bytes",
  async () => {
    using p = pipe();
    assert.equal(p.writer.writeSync("text "), 5);
    assert.equal(await p.writer.write("é "), 3);
    const writer = p.writer.writable.getWriter();
    await writer.write("streamed");
    await writer.close();
    assert.equal(await new Response(p.reader.readable).text(), "text é streamed");

    using q = pipe();
    for (const data of [123, null, undefined, {}, [1, 2], new ArrayBuffer(1), new Uint16Array(1)]) {
      const message = /must be a Uint8Array or a string/;
      assert.throws(() => q.writer.writeSync(data as string), TypeError, String(data));
      assert.throws(() => q.writer.writeSync(data as string), message);
      await assert.rejects(q.writer.write(data as string), TypeError, String(data));
    }
    for (const buffer of ["text", [0, 0], new ArrayBuffer(4), null] as unknown[]) {
      assert.throws(
        () => q.reader.readSync(buffer as Uint8Array),
        /the buffer must be a Uint8Array/,
      );
      await assert.rejects(q.reader.read(buffer as Uint8Array), TypeError);
    }
  },
);

ipcTest("pipe ends dropped without close() release their descriptors on GC", async () => {
  const output = await runDeno(fixture("pipe_gc.ts"), [], {
    flags: ["--allow-all", "--v8-flags=--expose-gc"],
    timeout: 30_000,
  });
  assert.equal(output.code, 0, output.stderr);
  assert.equal(output.stdout.trim(), "dropped 400 left 0");
});

/** An assert.throws() matcher: an error of `kind` whose message includes `text`. */
function failsWith(kind: new (...args: never[]) => Error, text: string) {
  return (error: unknown) => {
    assert.ok(error instanceof kind, `expected a ${kind.name}, got ${error}`);
    assert.ok(error.message.includes(text), `"${error.message}" lacks "${text}"`);
    return true;
  };
}

ipcTest("hostile paths, directions, labels and options are TypeErrors of their own", async () => {
  for (const bad of [Object.create(null), Symbol.iterator, { toString: null }]) {
    assert.throws(() => createFifo(bad), failsWith(TypeError, "non-empty string without NUL"));
    await assert.rejects(openFifo(bad, "read"), failsWith(TypeError, "non-empty string"));
    await assert.rejects(
      openFifo("/nonexistent/fifo", bad),
      failsWith(TypeError, 'must be "read" or "write"'),
    );
  }
  for (const bad of [null, 5, "x", [], () => {}]) {
    assert.throws(() => pipe(bad as never), failsWith(TypeError, "pipe() options"));
    assert.throws(
      () => createFifo("/nonexistent/fifo", bad as never),
      failsWith(TypeError, "createFifo() options"),
    );
  }
  using p = pipe();
  const fd = p.reader.fd;
  for (const bad of [Symbol("label"), Object.create(null), 5]) {
    assert.throws(() => new ReadEnd(p.reader, bad as never), failsWith(TypeError, "label"));
    assert.throws(() => new WriteEnd(fd, bad as never), failsWith(TypeError, "label"));
  }
  assert.equal(p.reader.closed, false); // the failed ends took nothing
});
