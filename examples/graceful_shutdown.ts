/**
 * Graceful shutdown: a supervisor runs its workers in one process group, and on SIGTERM (or
 * Ctrl-C) forwards SIGTERM to the whole group, waits a grace period, kills what is left, and
 * reaps every worker, telling how each one ended.
 *
 * Two workers finish their current job and exit 0 when told; the third ignores SIGTERM, as
 * a stuck program would, and is killed with SIGKILL after the grace period. Workers report
 * ready through a pipe, so that no signal arrives before they listen for it.
 *
 * Run: deno run --allow-ffi --allow-run examples/graceful_shutdown.ts
 * then press Ctrl-C, or send SIGTERM to the supervisor's pid that it prints.
 *
 * @module
 */

import {
  type ChildProcess,
  type ChildStatus,
  inheritedFd,
  onSignal,
  pipe,
  signals,
  spawnDeno,
  WriteEnd,
} from "../mod.ts";

const WORKERS = 3;
const GRACE_MS = 1000;

if (Deno.args[0] === "--worker") {
  const stubborn = Deno.args[1] === "stubborn";
  let working = true;
  using _term = onSignal("SIGTERM", () => {
    if (stubborn) return console.log(`  worker ${Deno.pid}: ignores SIGTERM`); // works on
    console.log(`  worker ${Deno.pid}: SIGTERM, finishing the current job and exiting`);
    working = false;
  });
  using ready = new WriteEnd(inheritedFd(3));
  ready.writeSync(new Uint8Array([1])); // listening now: tell the supervisor
  ready.close();
  while (working) await new Promise((resolve) => setTimeout(resolve, 50)); // a job at a time
} else {
  using incoming = signals("SIGTERM", "SIGINT"); // listening before anyone is told our pid
  using ready = pipe();
  const workers: ChildProcess[] = [];
  for (let i = 0; i < WORKERS; i++) {
    workers.push(spawnDeno(import.meta.url, {
      args: ["--worker", i === WORKERS - 1 ? "stubborn" : "polite"],
      permissions: { ffi: true },
      fds: { 3: ready.writer },
      processGroup: i === 0 ? true : workers[0]!.pgid, // the first leads; the others join
    }));
  }
  ready.writer.close();
  for (let got = 0; got < WORKERS;) got += await ready.reader.read(new Uint8Array(WORKERS)) ?? 0;
  const group = workers[0]!.pgid;
  console.log(
    `supervisor ${Deno.pid}: ${WORKERS} workers ready in process group ${group}; ` +
      `stop with Ctrl-C or kill -TERM ${Deno.pid}`,
  );

  for await (const signal of incoming) {
    console.log(`supervisor: ${signal}, forwarding SIGTERM to process group ${group}`);
    break;
  }
  workers[0]!.killGroup("SIGTERM");
  const grace = setTimeout(() => {
    console.log(`supervisor: ${GRACE_MS} ms are up, SIGKILL to what is left of the group`);
    workers[0]!.killGroup("SIGKILL");
  }, GRACE_MS);
  for (const worker of workers) {
    const status = await worker.status; // reaped: no zombie stays
    console.log(`supervisor: worker ${worker.pid} ${describe(status)}`);
  }
  clearTimeout(grace);
  console.log("supervisor: every worker reaped; exiting");
}

function describe(status: ChildStatus): string {
  if (status.state === "exited") return `exited with ${status.code}`;
  return status.state === "signaled" ? `was killed by ${status.signal}` : "was lost";
}
