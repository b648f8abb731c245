import assert from "node:assert/strict";
import { IpcError, isSystemError, type SystemErrorDetails } from "../mod.ts";
import { check, errnoCode, systemError } from "../src/errors.ts";

Deno.test("systemError() picks the Deno.errors class of each errno and fills every detail", () => {
  const cases: [number, string, new (...args: never[]) => Error][] = [
    [17, "EEXIST", Deno.errors.AlreadyExists],
    [2, "ENOENT", Deno.errors.NotFound],
    [13, "EACCES", Deno.errors.PermissionDenied],
    [1, "EPERM", Deno.errors.PermissionDenied],
    [11, "EAGAIN", Deno.errors.WouldBlock],
    [110, "ETIMEDOUT", Deno.errors.TimedOut],
    [4, "EINTR", Deno.errors.Interrupted],
    [9, "EBADF", Deno.errors.BadResource],
    [16, "EBUSY", Deno.errors.Busy],
    [38, "ENOSYS", Deno.errors.NotSupported],
    [95, "EOPNOTSUPP", Deno.errors.NotSupported],
    [32, "EPIPE", Deno.errors.BrokenPipe],
    [28, "ENOSPC", IpcError],
    [22, "EINVAL", IpcError],
  ];
  for (const [errno, code, ErrorClass] of cases) {
    const error = systemError(errno, "shm_open", {
      action: "open shared memory",
      objectName: "/q",
    });
    assert.ok(error instanceof ErrorClass, `${code} is a ${ErrorClass.name}`);
    assert.ok(isSystemError(error));
    assert.equal(error.code, code);
    assert.equal(errnoCode(errno), code);
    assert.equal(error.errno, errno);
    assert.equal(error.syscall, "shm_open");
    assert.equal(error.objectName, "/q");
    assert.match(error.message, new RegExp(`^Cannot open shared memory "/q": .+ \\(${code}\\)$`));
  }
});

Deno.test("messages read as 'Cannot <action> \"<name>\": <why> (<CODE>)', with an optional hint", () => {
  const error = systemError(17, "shm_open", {
    action: "create shared memory",
    objectName: "/jobs",
  });
  assert.equal(error.message, 'Cannot create shared memory "/jobs": already exists (EEXIST)');
  assert.equal(error.name, "AlreadyExists");
  const hinted = systemError(28, "posix_fallocate", { action: "grow", hint: "free some room" });
  assert.equal(hinted.message, "Cannot grow: no space left on device (ENOSPC): free some room");
  assert.equal(hinted.objectName, null);
  assert.equal(hinted.name, "IpcError");
  const unknown = systemError(999, "f", { action: "do it" });
  assert.equal(unknown.code, "E999");
  assert.match(unknown.message, /error 999 \(E999\)/);
});

Deno.test("check() returns the result, and throws the current errno on -1", () => {
  assert.equal(check(5, "open", { action: "open" }), 5);
  assert.equal(check(7n, "lseek", { action: "seek" }), 7);
  assert.throws(() => check(-1, "close", { action: "close" }), isSystemError);
  assert.throws(() => check(-1n, "lseek", { action: "seek" }), isSystemError);
});

Deno.test("isSystemError() rejects errors without the details", () => {
  assert.equal(isSystemError(new Error("x")), false);
  assert.equal(isSystemError(new Deno.errors.NotFound("x")), false);
  assert.equal(isSystemError({ code: "E", errno: 1, syscall: "s" }), false);
  assert.equal(isSystemError("EEXIST"), false);
});

/** An assert.throws() matcher: an error of `kind` whose message includes `text`. */
function failsWith(kind: new (...args: never[]) => Error, text: string) {
  return (error: unknown) => {
    assert.ok(error instanceof kind, `expected a ${kind.name}, got ${error}`);
    assert.ok(error.message.includes(text), `"${error.message}" lacks "${text}"`);
    return true;
  };
}

Deno.test("new IpcError() with bad details is a TypeError naming the field", () => {
  const good = { code: "ENOSPC", errno: 28, syscall: "write", objectName: null };
  const bad: [unknown, unknown, string][] = [
    ["m", undefined, "details"],
    ["m", null, "details"],
    ["m", 5, "details"],
    ["m", { ...good, code: undefined }, "details.code"],
    ["m", { ...good, errno: "28" }, "details.errno"],
    ["m", { ...good, errno: 1.5 }, "details.errno"],
    ["m", { ...good, syscall: Symbol() }, "details.syscall"],
    ["m", { ...good, objectName: 7 }, "details.objectName"],
    [Object.create(null), good, "message"],
    [Symbol("m"), good, "message"],
  ];
  for (const [message, details, field] of bad) {
    assert.throws(
      () => new IpcError(message as string, details as SystemErrorDetails),
      failsWith(TypeError, field),
    );
  }
  const made = new IpcError("m", { code: "ENOSPC", errno: -0, syscall: "write" } as never);
  assert.equal(made.objectName, null);
  assert.ok(Object.is(made.errno, 0));
});
