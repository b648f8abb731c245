import assert from "node:assert/strict";
import { codecs } from "../src/channel/mod.ts";

/** An assert.throws() matcher: an error of `kind` whose message includes `text`. */
function failsWith(kind: new (...args: never[]) => Error, text: string) {
  return (error: unknown) => {
    assert.ok(error instanceof kind, `expected a ${kind.name}, got ${error}`);
    assert.ok(error.message.includes(text), `"${error.message}" lacks "${text}"`);
    return true;
  };
}

Deno.test("every codec's decode() refuses a non-Uint8Array with a TypeError naming the codec", () => {
  for (const [name, codec] of Object.entries(codecs)) {
    for (
      const bad of [0, null, undefined, "bytes", [1, 2], new ArrayBuffer(4), Object.create(null)]
    ) {
      assert.throws(
        () => (codec.decode as (bytes: unknown) => unknown)(bad),
        failsWith(TypeError, `with the ${name} codec: it must be a Uint8Array`),
      );
    }
  }
});

Deno.test("codecs.structured: a value without a clone is a DataCloneError, bad bytes a TypeError", () => {
  for (const value of [{ valueOf: () => 7 }, () => 1, Symbol("s"), { nested: [new WeakMap()] }]) {
    assert.throws(
      () => codecs.structured.encode(value),
      (error: unknown) =>
        error instanceof DOMException && error.name === "DataCloneError" &&
        /with the structured codec: .*could not be cloned/.test(error.message),
    );
  }
  for (const bytes of [new Uint8Array(), new Uint8Array([1, 2, 3])]) {
    assert.throws(
      () => codecs.structured.decode(bytes),
      failsWith(TypeError, "no structured clone"),
    );
  }
  const map = new Map([["a", 1]]);
  assert.deepEqual(codecs.structured.decode(codecs.structured.encode(map)), map);
});

Deno.test("codec encode() messages show hostile values without throwing an engine error", () => {
  const hostile = Object.create(null);
  assert.throws(
    () => codecs.bytes.encode(hostile),
    failsWith(TypeError, "an object without a prototype"),
  );
  assert.throws(
    () => codecs.text.encode(hostile),
    failsWith(TypeError, "an object without a prototype"),
  );
  assert.throws(() => codecs.json.encode(Symbol("s")), failsWith(TypeError, "Symbol(s)"));
});
