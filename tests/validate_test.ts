import assert from "node:assert/strict";
import { pipe } from "../mod.ts";
import {
  cKey,
  ConstructorToken,
  cTimeoutMs,
  describe,
  INT_MAX,
  optionsObject,
  validateFdNumber,
  validateInteger,
  validateKey,
  validateMode,
  validateName,
  validatePid,
  validateProcessGroup,
  validateSize,
  validateTimeout,
} from "../src/_validate.ts";
import { deadlineIn, MAX_WAIT_MS, validateWaitOptions } from "../src/_wait.ts";
import { ipcTest } from "./helpers.ts";

Deno.test("validateInteger: RangeError naming the argument and the rule, TypeError for non-numbers", () => {
  assert.equal(validateInteger(5, "count", 1, 9), 5);
  for (const bad of [0, 10, 1.5, NaN, Infinity, -Infinity]) {
    assert.throws(() => validateInteger(bad, "count", 1, 9, "why"), RangeError, "count");
    assert.throws(() => validateInteger(bad, "count", 1, 9, "why"), /from 1 to 9 \(why\)/);
  }
  for (const bad of ["5", 5n, null, undefined, {}, Symbol("s"), Object.create(null)]) {
    assert.throws(() => validateInteger(bad, "count", 1, 9), TypeError, "count");
  }
});

Deno.test("pids, process groups and fds are C ints of their meaning", () => {
  assert.equal(validatePid(1), 1);
  assert.equal(validatePid(INT_MAX), INT_MAX);
  for (const bad of [0, -1, INT_MAX + 1, 2 ** 32 - 1, 2 ** 32 + 1]) {
    assert.throws(() => validatePid(bad), RangeError);
  }
  assert.equal(validateProcessGroup(2), 2);
  for (const bad of [0, 1, -1, 2 ** 32 + 1]) {
    assert.throws(() => validateProcessGroup(bad), RangeError);
  }
  assert.equal(validateFdNumber(0), 0);
  for (const bad of [-1, 2 ** 31, 2 ** 32 + 3]) {
    assert.throws(() => validateFdNumber(bad), RangeError);
  }
});

Deno.test("System V keys: 0 to 2^32 - 1 shown unsigned, passed to C as the same 32 bits", () => {
  assert.equal(validateKey(0xdeadbeef, "test"), 0xdeadbeef);
  assert.equal(cKey(0xdeadbeef), 0xdeadbeef | 0);
  assert.equal(cKey(0xdeadbeef) < 0, true);
  assert.equal(validateKey(-559038737, "test"), 0xdeadbeef); // the signed form of the same key
  assert.equal(validateKey(2 ** 32 - 1, "test"), 2 ** 32 - 1);
  for (const bad of [2 ** 32, -(2 ** 31) - 1, 1.5, NaN]) {
    assert.throws(() => validateKey(bad, "test"), RangeError, "test key");
  }
});

Deno.test("timeouts: Infinity and undefined mean none; NaN and negatives are RangeErrors", () => {
  assert.equal(validateTimeout(undefined, "wait"), Infinity);
  assert.equal(validateTimeout(Infinity, "wait"), Infinity);
  assert.equal(validateTimeout(0, "wait"), 0);
  assert.equal(validateTimeout(3e9, "wait"), 3e9);
  for (const bad of [NaN, -1, -Infinity]) {
    assert.throws(() => validateTimeout(bad, "wait"), RangeError, "timeout");
    assert.throws(() => validateWaitOptions({ timeout: bad }, "wait"), RangeError);
  }
  assert.throws(() => validateTimeout("5", "wait"), TypeError);
  assert.throws(() => validateWaitOptions({ signal: {} as AbortSignal }, "wait"), TypeError);
  assert.throws(
    () => validateWaitOptions(null as unknown as { timeout?: number }, "wait"),
    TypeError,
  );
});

Deno.test("timeouts reach C clamped to its range: poll's int ms and sem_clockwait's timespec", () => {
  assert.equal(cTimeoutMs(Infinity), -1);
  assert.equal(cTimeoutMs(0), 0);
  assert.equal(cTimeoutMs(0.2), 1);
  assert.equal(cTimeoutMs(-5), 0);
  assert.equal(cTimeoutMs(NaN), 0);
  assert.equal(cTimeoutMs(3e9), INT_MAX);
  assert.equal(cTimeoutMs(1e300), INT_MAX);
  for (const ms of [Infinity, 1e300, Number.MAX_VALUE, 3e9, NaN, -1]) {
    const view = new DataView(deadlineIn(ms).buffer);
    const now = new DataView(deadlineIn(0).buffer);
    const seconds = Number(view.getBigInt64(0, true) - now.getBigInt64(0, true));
    assert.ok(seconds >= 0 && seconds <= MAX_WAIT_MS / 1000 + 1, `${ms}: ${seconds} s`);
  }
});

ipcTest("pipe({ capacity }) beyond a C int is a RangeError naming the kernel's range", () => {
  for (const capacity of [2 ** 31, 2 ** 32, 2 ** 32 + 4096, 0, -1, 1.5, NaN, Infinity]) {
    assert.throws(
      () => pipe({ capacity }),
      (error: unknown) =>
        error instanceof RangeError && /pipe capacity/.test(error.message) &&
        /from 1 to 2147483647/.test(error.message) && /pipe-max-size/.test(error.message),
    );
  }
  assert.throws(() => pipe({ capacity: "4096" as unknown as number }), TypeError);
  using ok = pipe({ capacity: 65536 });
  assert.ok(ok.writer.fd >= 0);
});

/** An assert.throws() matcher: an error of `kind` whose message includes `text`. */
function failsWith(kind: new (...args: never[]) => Error, text: string) {
  return (error: unknown) => {
    assert.ok(error instanceof kind, `expected a ${kind.name}, got ${error}`);
    assert.ok(error.message.includes(text), `"${error.message}" lacks "${text}"`);
    return true;
  };
}

Deno.test("describe() shows every value without throwing or running its methods", () => {
  const hostile = {
    toString() {
      throw new Error("toString ran");
    },
    valueOf() {
      throw new Error("valueOf ran");
    },
    [Symbol.toPrimitive]() {
      throw new Error("toPrimitive ran");
    },
  };
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  const cases: [unknown, string][] = [
    [Object.create(null), "an object without a prototype"],
    [hostile, "an object"],
    [proxy, "an object"],
    [Symbol("s"), "Symbol(s)"],
    [Symbol(), "Symbol()"],
    [5n, "5n"],
    [-0, "-0"],
    [0, "0"],
    [NaN, "NaN"],
    [null, "null"],
    [undefined, "undefined"],
    ["a\0b", '"a\\u0000b"'],
    ["x".repeat(100), `"${"x".repeat(60)}…"`],
    [[1, 2], "an array of length 2"],
    [new Map(), "a Map"],
    [function named() {}, "function named"],
  ];
  for (const [value, shown] of cases) assert.equal(describe(value), shown);
});

Deno.test("-0 is returned as 0 by every integer check, never reaching FFI as a float", () => {
  for (const check of [validateFdNumber, (v: unknown) => validateInteger(v, "n", -5, 5)]) {
    const result = check(-0);
    assert.ok(Object.is(result, 0), "-0 must come back as +0");
  }
  assert.ok(Object.is(validateKey(-0, "test"), 0));
  assert.ok(Object.is(validateTimeout(-0, "wait"), 0));
  assert.ok(Object.is(validateMode(-0), 0));
  assert.throws(() => validatePid(-0), RangeError);
});

Deno.test("validateName() and validateInteger() name hostile values in a TypeError of their own", () => {
  for (const bad of [Object.create(null), Symbol.iterator, { toString: null, valueOf: null }]) {
    assert.throws(
      () => validateName(bad, "shared memory"),
      failsWith(TypeError, "must be a string"),
    );
    assert.throws(
      () => validateInteger(bad, "count", 1, 9),
      failsWith(TypeError, "must be a number"),
    );
    assert.throws(
      () => validateSize(bad, "size"),
      failsWith(TypeError, "must be a number of bytes"),
    );
    assert.throws(() => validateMode(bad), failsWith(RangeError, "permission bits"));
  }
  assert.throws(() => validateName("/a\0b", "shared memory"), failsWith(TypeError, '"/a\\u0000b"'));
});

Deno.test("optionsObject(): undefined is {}, objects are themselves, the rest a TypeError", () => {
  assert.deepEqual(optionsObject(undefined, "open() options"), {});
  const given = { a: 1 };
  assert.equal(optionsObject(given, "open() options"), given);
  const bare = Object.create(null);
  assert.equal(optionsObject(bare, "open() options"), bare);
  for (const bad of [null, 0, "x", [], () => {}, Symbol(), 1n, true]) {
    assert.throws(
      () => optionsObject(bad as unknown as object, "open() options"),
      failsWith(TypeError, "open() options"),
    );
  }
});

Deno.test("ConstructorToken: only the module's token builds an object", () => {
  const token = new ConstructorToken("Widget", "Widget.create()");
  class Widget {
    constructor(key: unknown) {
      token.check(key);
    }
  }
  assert.ok(new Widget(token) instanceof Widget);
  for (const wrong of [undefined, null, {}, new ConstructorToken("Widget", "Widget.create()")]) {
    assert.throws(() => new Widget(wrong), failsWith(TypeError, "Illegal constructor: Widget"));
  }
});
