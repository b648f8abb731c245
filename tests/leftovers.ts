/**
 * Runs a command (the test suite) and fails if it left IPC objects on the machine: names in
 * /dev/shm or /dev/mqueue, or System V objects, that were not there before it started. This
 * covers what `ipcTest` cannot: JSDoc and README examples, and anything a crashed test left.
 *
 * Usage: deno run -A tests/leftovers.ts deno test -A --doc [args…]
 *
 * @module
 */

import { ipcSnapshot } from "./helpers.ts";

const [command, ...args] = Deno.args;
if (!command) throw new TypeError("usage: leftovers.ts COMMAND [ARGS…]");

const before = ipcSnapshot();
const status = await new Deno.Command(command, { args, stdin: "inherit" }).spawn().status;
const left = [...ipcSnapshot()].filter((entry) => !before.has(entry));
if (left.length > 0) {
  console.error(`The test suite left IPC objects behind:\n  ${left.join("\n  ")}`);
  Deno.exit(1);
}
console.log("Leftover check: no IPC object was left behind.");
Deno.exit(status.success ? 0 : status.code || 1);
