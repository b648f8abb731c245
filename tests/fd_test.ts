import assert from "node:assert/strict";
import { inheritedFd, OwnedFd, SharedMemory } from "../mod.ts";
import { ipcTest } from "./helpers.ts";

function isOpen(fd: number): boolean {
  try {
    Deno.readLinkSync(`/proc/self/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
}

ipcTest("OwnedFd closes once; later uses throw BadResource", () => {
  using memory = SharedMemory.anonymous({ size: 64 });
  const fd = new OwnedFd(memory.fd).dup();
  const number = fd.fd;
  assert.ok(isOpen(number));
  fd.close();
  fd.close();
  assert.equal(fd.closed, true);
  assert.equal(isOpen(number), false);
  assert.throws(() => fd.fd, Deno.errors.BadResource);
  assert.throws(() => fd.dup(), Deno.errors.BadResource);
  assert.throws(() => fd.inheritable, Deno.errors.BadResource);
  assert.throws(() => fd.release(), Deno.errors.BadResource);
});

ipcTest("dup() is close-on-exec and refers to the same file; inheritable toggles it", () => {
  using memory = SharedMemory.anonymous({ size: 64 });
  using copy = new OwnedFd(memory.fd).dup();
  assert.notEqual(copy.fd, memory.fd);
  assert.equal(
    Deno.readLinkSync(`/proc/self/fd/${copy.fd}`),
    Deno.readLinkSync(`/proc/self/fd/${memory.fd}`),
  );
  assert.equal(copy.inheritable, false);
  copy.inheritable = true;
  assert.equal(copy.inheritable, true);
  copy.inheritable = false;
  assert.equal(copy.inheritable, false);
});

ipcTest("release() hands the number over without closing it", () => {
  using memory = SharedMemory.anonymous({ size: 64 });
  const fd = new OwnedFd(memory.fd).dup();
  const number = fd.release();
  assert.equal(fd.closed, true);
  fd.close(); // does nothing: the number is the caller's now
  assert.ok(isOpen(number));
  new OwnedFd(number).close();
  assert.equal(isOpen(number), false);
});

Deno.test("OwnedFd rejects numbers that cannot be descriptors: RangeError, TypeError for non-numbers", () => {
  for (const bad of [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 53]) {
    assert.throws(() => new OwnedFd(bad), RangeError, String(bad));
  }
  for (const bad of ["3", 3n, null, undefined, { valueOf: () => 3 }]) {
    assert.throws(() => new OwnedFd(bad as unknown as number), TypeError);
  }
});

ipcTest("new OwnedFd(2 ** 32 + n) is a RangeError and never closes fd n", () => {
  using memory = SharedMemory.anonymous({ size: 64 });
  const n = memory.fd;
  for (let i = 0; i < 2000; i++) { // warm: V8 would wrap 2^32 + n to n once optimized
    assert.throws(() => new OwnedFd(2 ** 32 + n).close(), RangeError);
  }
  assert.ok(isOpen(n));
});

Deno.test("inheritedFd() refuses 0, 1 and 2 with a RangeError, before any syscall", () => {
  for (const fd of [0, 1, 2]) {
    assert.throws(() => inheritedFd(fd), RangeError, "stdin, stdout and stderr");
  }
  assert.throws(() => inheritedFd(2 ** 32 + 3), RangeError);
  assert.throws(() => inheritedFd(-1), RangeError);
  assert.equal(isOpen(0) && isOpen(1) && isOpen(2), true);
});

Deno.test("a descriptor that is not open is BadResource with code EBADF", () => {
  const fd = new OwnedFd(999_999);
  assert.throws(
    () => fd.dup(),
    (error: unknown) => error instanceof Deno.errors.BadResource && /EBADF/.test(String(error)),
  );
  fd.release();
});

/** An assert.throws() matcher: an error of `kind` whose message includes `text`. */
function failsWith(kind: new (...args: never[]) => Error, text: string) {
  return (error: unknown) => {
    assert.ok(error instanceof kind, `expected a ${kind.name}, got ${error}`);
    assert.ok(error.message.includes(text), `"${error.message}" lacks "${text}"`);
    return true;
  };
}

/** How many descriptors this process has open. */
function openFdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

ipcTest(
  "OwnedFd methods borrowed by another object throw a TypeError and leak no descriptor",
  () => {
    using memory = SharedMemory.anonymous({ size: 64 });
    const before = openFdCount();
    for (const receiver of [memory, { fd: memory.fd }, Object.create(null), null, undefined, 3]) {
      assert.throws(() => OwnedFd.prototype.dup.call(receiver), failsWith(TypeError, "no OwnedFd"));
      assert.throws(
        () => OwnedFd.prototype.release.call(receiver),
        failsWith(TypeError, "no OwnedFd"),
      );
      assert.throws(
        () => OwnedFd.prototype.close.call(receiver),
        failsWith(TypeError, "no OwnedFd"),
      );
    }
    assert.equal(openFdCount(), before);
    assert.equal(isOpen(memory.fd), true);
  },
);

ipcTest("OwnedFd.inheritable accepts only a boolean: a TypeError names anything else", () => {
  using memory = SharedMemory.anonymous({ size: 64 });
  using copy = new OwnedFd(memory.fd).dup();
  for (const bad of [0, 1, "false", "true", {}, null, undefined, Object.create(null), 1n]) {
    assert.throws(
      () => {
        copy.inheritable = bad as unknown as boolean;
      },
      failsWith(TypeError, "true or false"),
    );
    assert.equal(copy.inheritable, false);
  }
});

Deno.test("inheritedFd(-0) is a RangeError like 0", () => {
  assert.throws(() => inheritedFd(-0), failsWith(RangeError, "stdin, stdout and stderr"));
});
