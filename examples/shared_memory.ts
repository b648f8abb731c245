/**
 * Two Deno processes share memory by name.
 *
 * The parent creates a named segment, writes a greeting and starts a child Deno process. The
 * child opens the segment by its name, reads the greeting and writes a reply, and both add to
 * one counter with `Atomics.add` at the same time. The parent removes the name at the end,
 * also when stopped with Ctrl-C.
 *
 * Run: deno run --allow-ffi --allow-run examples/shared_memory.ts
 *
 * @module
 */

import { SharedMemory } from "../mod.ts";

const GREETING_AT = 64;
const REPLY_AT = 1024;
const ADDS = 100_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Cells of the Int32Array at the start of the segment. */
const Cell = { Counter: 0, Ready: 1 } as const;

function say(who: string, text: string): void {
  console.log(`${who.padEnd(14)} ${text}`);
}

function writeText(memory: SharedMemory, at: number, text: string): void {
  encoder.encodeInto(`${text}\0`, memory.bytes.subarray(at));
}

function readText(memory: SharedMemory, at: number): string {
  const bytes = memory.bytes.subarray(at);
  return decoder.decode(bytes.subarray(0, bytes.indexOf(0)));
}

/** Adds to the shared counter once both processes are ready, so that they race for real. */
function addConcurrently(memory: SharedMemory): void {
  const cells = new Int32Array(memory.buffer);
  Atomics.add(cells, Cell.Ready, 1);
  const deadline = Date.now() + 5_000;
  while (Atomics.load(cells, Cell.Ready) < 2 && Date.now() < deadline) {
    // wait, bounded, for the other process
  }
  for (let i = 0; i < ADDS; i++) Atomics.add(cells, Cell.Counter, 1);
}

async function parent(): Promise<void> {
  const me = `parent ${Deno.pid}`;
  const name = `/posix-ipc-demo-${Deno.pid}`;
  using memory = SharedMemory.create(name, { size: 4096 });
  const stop = () => {
    memory.close(); // removes the name even when interrupted
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", stop);
  say(me, `created shared memory "${name}" (${memory.size} bytes) in /dev/shm`);
  writeText(memory, GREETING_AT, `hello from parent ${Deno.pid}`);
  say(me, `wrote: "${readText(memory, GREETING_AT)}"`);

  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", import.meta.url, "--child", name],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  addConcurrently(memory);
  const status = await child.status;
  Deno.removeSignalListener("SIGINT", stop);
  if (!status.success) throw new Error(`the child failed with exit code ${status.code}`);

  say(me, `read the child's reply: "${readText(memory, REPLY_AT)}"`);
  const total = Atomics.load(new Int32Array(memory.buffer), Cell.Counter);
  say(me, `shared counter = ${total} (${ADDS} from each process, at the same time)`);
  say(me, `closing: the creator removes "${name}"`);
}

function child(name: string): void {
  const me = `  child ${Deno.pid}`;
  using memory = SharedMemory.open(name);
  say(me, `opened "${name}" by name and read: "${readText(memory, GREETING_AT)}"`);
  writeText(memory, REPLY_AT, `hello back from child ${Deno.pid}`);
  addConcurrently(memory);
  say(me, `wrote a reply and added ${ADDS} to the shared counter`);
}

if (Deno.args[0] === "--child") child(Deno.args[1]!);
else await parent();
