// Attacks on SharedMap: a hostile process that corrupts the segment, and keys too large to encode.
import assert from "node:assert/strict";
import { codecs, SharedMap } from "../mod.ts";
import { fixture, ipcTest, runDeno } from "./helpers.ts";

ipcTest(
  "a hostile process overwriting the map's header, lock and slots with edge values gets its " +
    "victim only typed errors: no crash, no hang, nothing written outside the segment",
  async () => {
    for (const seed of [1, 2, 4]) {
      const output = await runDeno(fixture("attack_map_corrupt.ts"), [String(seed), "400"], {
        flags: ["--allow-ffi", "--allow-read", "--allow-write"],
        timeout: 60_000,
      });
      assert.equal(output.code, 0, `seed ${seed}: ${output.signal} ${output.stderr}`);
      assert.match(output.stdout, /^calls 3200 errors /);
    }
  },
);

ipcTest("a huge key is refused without being encoded: no copy of its gigabytes", () => {
  using map = SharedMap.create({ capacity: 4 });
  const key = "€".repeat(2 ** 24); // 48 MiB of UTF-8
  const encode = TextEncoder.prototype.encode;
  let encoded = 0;
  TextEncoder.prototype.encode = function (this: TextEncoder, input?: string) {
    encoded += input?.length ?? 0;
    return encode.call(this, input);
  };
  try {
    // Before: the RangeError's message encoded the whole key to count its bytes (for a key of
    // 2^29 characters: 12 s and 2.6 GB).
    for (const call of [() => map.get(key), () => map.set(key, new Uint8Array(1))]) {
      assert.throws(call, RangeError);
    }
  } finally {
    TextEncoder.prototype.encode = encode;
  }
  assert.equal(encoded, 0);
});

ipcTest(
  "update() and updateAsync() store under their own key when the codec's encode reads the map",
  async () => {
    // The codec looks another key up (a cache that consults itself, a schema kept in the map).
    const codec = {
      name: "reads-the-map",
      encode(value: string) {
        map.get("other");
        return new TextEncoder().encode(value);
      },
      decode: (bytes: Uint8Array) => new TextDecoder().decode(bytes),
    };
    const map = SharedMap.create<string>({ codec, capacity: 8 });
    try {
      map.set("other", "o");
      // Before: the new entry took the key the codec looked up last, a second "other".
      assert.equal(map.update("k", () => "sync"), "sync");
      assert.equal(await map.updateAsync("j", () => "async"), "async");
      assert.equal(map.update("k", (v) => `${v}!`), "sync!", "a replaced value too");
      assert.deepEqual(
        [...map.entries()].sort(),
        [["j", "async"], ["k", "sync!"], ["other", "o"]],
      );
      assert.equal(map.size, 3);
    } finally {
      map.close();
    }
  },
);

ipcTest(
  'whenFull "evict-lru": a key set in a full map is found afterwards, never stored twice',
  () => {
    // Before: when the evicted entry sat in the new key's probe chain just before the free slot
    // found for it, eviction emptied that slot and the key went past it, where no lookup looks:
    // get() missed it, and the next set() stored it a second time (evicting another entry).
    using map = SharedMap.create({ codec: codecs.text, capacity: 4, whenFull: "evict-lru" });
    const random = () => crypto.randomUUID().slice(0, 8);
    for (let i = 0; i < 2000; i++) {
      const key = random();
      map.set(key, String(i));
      assert.equal(map.get(key), String(i), `set ${i}: the key just set is found`);
      map.set(key, `${i}!`);
      const keys = [...map.keys()];
      assert.equal(new Set(keys).size, keys.length, `set ${i}: no key twice`);
      assert.equal(map.size, keys.length);
      assert.equal(map.get(key), `${i}!`);
    }
  },
);
