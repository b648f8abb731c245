/**
 * A broadcast to a process group: one signal reaches every process of the group at once.
 *
 * The parent starts LISTENERS Deno processes in a new process group and shares a config
 * with them in anonymous shared memory (fd 3). It writes a new config, then sends SIGHUP
 * once, to the group: every listener re-reads the config and reports over a pipe (fd 4).
 * A last SIGTERM to the group ends them all. This is the "reload on SIGHUP" convention of
 * Unix daemons, for a whole family of processes.
 *
 * Run: deno run --allow-ffi --allow-run examples/broadcast.ts [LISTENERS]
 *
 * @module
 */

import {
  type ChildProcess,
  inheritedFd,
  onSignal,
  pipe,
  SharedMemory,
  spawnDeno,
  WriteEnd,
} from "../mod.ts";

const encoder = new TextEncoder();

function readConfig(memory: SharedMemory): string {
  const bytes = memory.bytes;
  return new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
}

if (Deno.args[0] === "--listener") {
  const memory = SharedMemory.fromFd(inheritedFd(3));
  const report = new WriteEnd(inheritedFd(4));
  const say = (text: string) => report.writeSync(encoder.encode(`${Deno.pid} ${text}\n`));
  onSignal("SIGHUP", () => say(`reloaded: "${readConfig(memory)}"`));
  onSignal("SIGTERM", () => {
    say("stopping");
    Deno.exit(0);
  });
  say(`started with "${readConfig(memory)}"`);
  setInterval(() => {}, 1000); // serve until SIGTERM
} else {
  const count = Number(Deno.args[0] ?? 3);
  using memory = SharedMemory.anonymous({ size: 4096 });
  encoder.encodeInto("config v1\0", memory.bytes);
  using reports = pipe();
  const listeners: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    listeners.push(spawnDeno(import.meta.url, {
      args: ["--listener"],
      permissions: { ffi: true },
      fds: { 3: memory, 4: reports.writer },
      processGroup: i === 0 ? true : listeners[0]!.pgid,
    }));
  }
  reports.writer.close();
  const lines = reports.reader.readable.pipeThrough(new TextDecoderStream()).pipeThrough(
    splitLines(),
  ).getReader();
  const next = async (n: number) => {
    for (let i = 0; i < n; i++) console.log(`  listener ${(await lines.read()).value}`);
  };
  const group = listeners[0]!.pgid;
  console.log(`parent: ${count} listeners in process group ${group}`);
  await next(count);

  encoder.encodeInto("config v2\0", memory.bytes);
  console.log(`parent: wrote "config v2", one SIGHUP to process group ${group}`);
  listeners[0]!.killGroup("SIGHUP");
  await next(count);

  console.log(`parent: SIGTERM to process group ${group}`);
  listeners[0]!.killGroup("SIGTERM");
  await next(count);
  const codes = await Promise.all(listeners.map(async (child) => (await child.status).success));
  console.log(`parent: ${codes.filter(Boolean).length} of ${count} listeners exited cleanly`);
  lines.releaseLock();
}

function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) controller.enqueue(line);
    },
  });
}
