/**
 * SharedMap reads while other processes write: the target is at least 2 million `get`s
 * a second in one process while 3 other processes write (set and update) random keys of the
 * same map.
 *
 * - "get while 3 processes write": the user's path first, `map.get(key)` of JSON values (a rate
 *   limiter's windows) with three writer processes running; then `has`, which decodes nothing;
 *   then a JS `Map` in one process, the best case reference (it shares nothing).
 * - "set": `await map.setAsync(key, value)` of JSON values, the user's path in a server (the
 *   lock is waited for off the event loop), with the same 3 writers contending for the lock;
 *   then the sync `map.set`, contended and alone.
 *
 * For gets a second with alternating trials, and bytes values, run bench/fixtures/map_trials.ts.
 *
 * Run: deno task bench bench/map_bench.ts
 *
 * @module
 */

import { codecs, SharedMap } from "../mod.ts";
import { contended, KEYS } from "./fixtures/map_setup.ts";

const json = contended("json"); // bytes values: bench/fixtures/map_trials.ts (3 writers at a time)
await json.start(3);

const local = new Map<string, unknown>(KEYS.map((key) => [key, { start: 0, count: 0 }]));
const alone = SharedMap.create({ codec: codecs.json, capacity: KEYS.length, maxValueBytes: 64 });
let i = 0;
const next = () => KEYS[i++ % KEYS.length]!;

Deno.bench({
  group: "get while 3 processes write",
  name: "SharedMap.get, JSON values (3 writer processes)",
  baseline: true,
  fn() {
    json.map.get(next());
  },
});

Deno.bench({
  group: "get while 3 processes write",
  name: "best case: SharedMap.has, no value decoded (3 writer processes)",
  fn() {
    json.map.has(next());
  },
});

Deno.bench({
  group: "get while 3 processes write",
  name: "best case: JS Map.get in one process (shares nothing)",
  fn() {
    local.get(next());
  },
});

Deno.bench({
  group: "set",
  name: "SharedMap.setAsync, JSON values (3 writer processes contend for the lock)",
  baseline: true,
  async fn() {
    await json.map.setAsync(next(), { start: 1, count: 2 });
  },
});

Deno.bench({
  group: "set",
  name: "best case: SharedMap.set, sync, JSON values (3 writer processes contend for the lock)",
  fn() {
    json.map.set(next(), { start: 1, count: 2 });
  },
});

Deno.bench({
  group: "set",
  name: "best case: SharedMap.set, sync, JSON values, no other writer",
  fn() {
    alone.set(next(), { start: 1, count: 2 });
  },
});

globalThis.addEventListener("unload", () => {
  void json.stop();
  alone.close();
});
