/**
 * Handing a segment to another process so that neither side can pull it from under the other.
 *
 * The parent fills an anonymous segment with a table, seals it (no write, no shrink, no grow,
 * no further seal) and hands the descriptor to a child. The child maps it only after checking
 * the seals (`requireSeals`): a segment that could be shrunk would let the parent, or anyone
 * holding the descriptor, kill the child with SIGBUS. The child then tries what a buggy or
 * hostile peer would, truncating and writing through the descriptor, and the kernel refuses
 * both. Nothing is left behind: the segment has no name.
 *
 * Run: deno run --allow-all examples/sealed_handoff.ts
 * (--allow-all because the child opens /proc/self/fd to play the hostile peer.)
 *
 * @module
 */

import { inheritedFd, SharedMemory, spawnDeno } from "../mod.ts";

const ENTRIES = 1024;

function say(who: string, text: string): void {
  console.log(`${who.padEnd(12)} ${text}`);
}

async function parent(): Promise<void> {
  const me = `parent ${Deno.pid}`;
  using table = SharedMemory.anonymous({ size: ENTRIES * 4, seal: [] }); // sealable
  const squares = new Uint32Array(table.buffer);
  for (let i = 0; i < ENTRIES; i++) squares[i] = i * i;
  table.seal(["write", "shrink", "grow", "seal"]);
  say(me, `filled ${ENTRIES} squares, sealed: ${table.seals.join(", ")}`);
  const child = spawnDeno(new URL(import.meta.url), {
    args: ["child"],
    fds: { 3: table },
    permissions: "all",
  });
  const status = await child.status;
  say(
    me,
    `child ${status.state} ${
      status.state === "exited" ? status.code : status.state === "signaled" ? status.signal : "lost"
    }`,
  );
  if (status.state !== "exited" || status.code !== 0) Deno.exit(1);
}

function child(): void {
  const me = `child ${Deno.pid}`;
  const fd = inheritedFd(3);
  using table = SharedMemory.fromFd(fd.dup(), { requireSeals: ["shrink", "write"] });
  const squares = new Uint32Array(table.buffer);
  let sum = 0;
  for (const square of squares) sum += square;
  say(me, `mapped ${table.size} bytes read-only: ${table.readOnly}; sum of squares ${sum}`);
  using file = Deno.openSync(`/proc/self/fd/${fd.fd}`, { read: true, write: true });
  for (
    const [what, attempt] of [
      ["truncate to 0", () => file.truncateSync(0)],
      ["write a byte", () => file.writeSync(new Uint8Array([1]))],
    ] as const
  ) {
    try {
      attempt();
      say(me, `${what}: allowed (the seals did not hold!)`);
      Deno.exit(1);
    } catch (error) {
      say(me, `${what}: refused by the kernel (${(error as Error).name})`);
    }
  }
  fd.close();
  say(me, `still reads square 1023 = ${squares[1023]}`);
}

if (Deno.args[0] === "child") child();
else await parent();
