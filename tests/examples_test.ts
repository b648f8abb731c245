import assert from "node:assert/strict";
import { MessageQueue } from "../mod.ts";
import { assertSucceeded, ipcTest, runDeno, uniqueName } from "./helpers.ts";

const example = (name: string) => new URL(`../examples/${name}`, import.meta.url).pathname;
const ffiRun = ["--allow-ffi", "--allow-run"];
const decoder = new TextDecoder();

async function run(name: string, args: string[], flags = ffiRun): Promise<string> {
  return assertSucceeded(await runDeno(example(name), args, { flags })).stdout;
}

/** Starts an example, reads its output until `ready` matches, and returns the process. */
async function startUntil(name: string, args: string[], ready: RegExp, flags = ffiRun) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, example(name), ...args],
    stdout: "piped",
  }).spawn();
  // A hang fails the test instead of stalling the suite.
  const watchdog = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const reader = child.stdout.getReader();
  let text = "";
  while (!ready.test(text)) {
    const { value, done } = await reader.read();
    if (done) {
      clearTimeout(watchdog);
      throw new Error(`${name} ended before printing ${ready}:\n${text}`);
    }
    text += decoder.decode(value);
  }
  return {
    child,
    /** The rest of its output, once it exits. */
    async rest(): Promise<{ text: string; status: Deno.CommandStatus }> {
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        text += decoder.decode(chunk.value);
      }
      const status = await child.status;
      clearTimeout(watchdog);
      return { text, status };
    },
  };
}

const demoFlags = ["--allow-ffi", "--allow-read", "--allow-run"];

ipcTest("the demo tour runs every step, summarises, and leaves nothing behind", async () => {
  const stdout = await run("demo.ts", [], demoFlags);
  for (let step = 1; step <= 5; step++) assert.match(stdout, new RegExp(`\\[${step}/5\\] `));
  assert.match(stdout, /opened "\/posix-ipc-demo-\d+" by name and read: "hello from parent \d+"/);
  assert.match(stdout, /shared counter = 200000 /);
  assert.match(stdout, /the child saw 1000000 in order/);
  const moved = Number(
    stdout.match(/Summary: 5 demonstrations, ([\d,]+) messages/)![1]!.replaceAll(",", ""),
  );
  assert.equal(moved, 2 + 20000 + 50000 + 48 + 1000000);
  assert.match(stdout, /messages\/s overall/);
});

ipcTest(
  "the demo interrupted with SIGINT half way kills its step's processes and names",
  async () => {
    const tour = await startUntil("demo.ts", ["--only", "pool"], /pool: 3 workers/, demoFlags);
    tour.child.kill("SIGINT");
    const { text, status } = await tour.rest();
    assert.equal(status.code, 130, text);
    assert.match(text, /SIGINT: stopping the tour and cleaning up/);
    // ipcTest fails the test if the task queue is left; no worker may outlive the tour either.
    assert.deepEqual(processesRunning("examples/worker_pool.ts"), []);
  },
);

/** Pids of processes whose command line mentions `script`. */
function processesRunning(script: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).includes(script)) {
        pids.push(Number(entry.name));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

ipcTest(
  "shared_memory.ts: a child opens the parent's segment by name; both see the writes",
  async () => {
    const stdout = await run("shared_memory.ts", []);
    assert.match(stdout, /opened "\/posix-ipc-demo-\d+" by name and read: "hello from parent \d+"/);
    assert.match(stdout, /read the child's reply: "hello back from child \d+"/);
    assert.match(stdout, /shared counter = 200000 /);
  },
);

ipcTest("channel_stream.ts: every message arrives once and in order", async () => {
  const stdout = await run("channel_stream.ts", ["50000", "100"]);
  assert.match(stdout, /sent 50000 messages of 100 B to child \d+/);
  assert.match(stdout, /the child saw 50000 in order \(5000000 bytes\)/);
  assert.match(stdout, /million messages\/s, \d+ MiB\/s/);
});

ipcTest("zero_copy.ts: every committed frame arrives intact, no abandoned one", async () => {
  const stdout = await run("zero_copy.ts", ["3000", "16384"]);
  assert.match(stdout, /^2700 of 3000 frames arrived \(300 abandoned\), 0 damaged$/m);
  assert.match(stdout, /^\d+ MB\/s, rendered in place$/m);
});

ipcTest("bounded_buffer.ts: every item crosses the 8 slots once, and both sums agree", async () => {
  const stdout = await run("bounded_buffer.ts", ["3000"]);
  assert.match(stdout, /consumer \d+ took 3000 items, sum 4498500/);
  assert.match(stdout, /producer \d+ put 3000 items through 8 slots, sum 4498500/);
  assert.match(stdout, /^done in \d+ ms$/m);
});

ipcTest("meet_by_name.ts: a second, unrelated process finds the first by name", async () => {
  const name = uniqueName("meet");
  const host = await startUntil("meet_by_name.ts", [name], /waiting for a guest/, ["--allow-ffi"]);
  const guest = await run("meet_by_name.ts", [name], ["--allow-ffi"]);
  assert.match(guest, new RegExp(`guest \\d+: opened channel "${name}" by its name`));
  const { text, status } = await host.rest();
  assert.ok(status.success, text);
  const guestPid = guest.match(/guest (\d+)/)![1];
  assert.match(text, /received "hello"\n.*received "I am process \d+"\n.*received "goodbye"/);
  assert.match(text, new RegExp(`I am process ${guestPid}`));
  assert.match(text, /the guest closed the channel; removing/);
});

ipcTest("meet_by_name.ts: a host stopped with Ctrl-C removes its name", async () => {
  const name = uniqueName("meet-int");
  const host = await startUntil("meet_by_name.ts", [name], /waiting for a guest/, ["--allow-ffi"]);
  host.child.kill("SIGINT");
  const { status } = await host.rest();
  assert.equal(status.code, 130);
  // ipcTest fails the test if the name is still in /dev/shm
});

ipcTest("worker_pool.ts: every task is done once, shared among the workers", async () => {
  const stdout = await run("worker_pool.ts", ["12", "3"]);
  assert.match(stdout, /pool: 3 workers \(\d+, \d+, \d+\)/);
  const shares = stdout.match(/pool: 12 tasks done \((.*)\)/)![1]!;
  const counts = shares.split(", ").map((share) => Number(share.split(": ")[1]));
  assert.equal(counts.reduce((a, b) => a + b, 0), 12);
  assert.match(stdout, /primes in all, as computed here/);
});

ipcTest("pipeline.ts: grep | sort | wc -l counts what JavaScript counts", async () => {
  const stdout = await run("pipeline.ts", ["zz"]);
  assert.match(stdout, /grep \d+ \| sort \d+ \| wc \d+: 50000 words in/);
  const counted = Number(stdout.match(/counted (\d+) lines/)![1]);
  assert.ok(counted > 0);
  assert.match(stdout, new RegExp(`JavaScript counts ${counted}: the same`));
  assert.match(stdout, /exit codes: 0, 0, 0/);
});

ipcTest(
  "graceful_shutdown.ts: SIGTERM reaches the group; the stubborn worker is killed",
  async () => {
    const supervisor = await startUntil("graceful_shutdown.ts", [], /workers ready/);
    supervisor.child.kill("SIGTERM");
    const { text, status } = await supervisor.rest();
    assert.ok(status.success, text);
    assert.match(text, /supervisor: SIGTERM, forwarding SIGTERM to process group \d+/);
    assert.equal(text.match(/worker \d+ exited with 0/g)?.length, 2, text);
    assert.match(text, /worker \d+: ignores SIGTERM/);
    assert.match(text, /SIGKILL to what is left of the group\n.*worker \d+ was killed by SIGKILL/s);
    assert.match(text, /every worker reaped/);
  },
);

ipcTest("broadcast.ts: one SIGHUP to the group reaches every listener", async () => {
  const stdout = await run("broadcast.ts", ["3"]);
  assert.equal(stdout.match(/started with "config v1"/g)?.length, 3);
  assert.equal(stdout.match(/reloaded: "config v2"/g)?.length, 3);
  assert.equal(stdout.match(/stopping/g)?.length, 3);
  assert.match(stdout, /3 of 3 listeners exited cleanly/);
});

ipcTest("pubsub.ts: every late subscriber process gets every tick, in order", async () => {
  const stdout = await run("pubsub.ts", ["3"]);
  const last = stdout.match(/last price ([\d.]+); closing/)?.[1];
  assert.ok(last, stdout);
  assert.equal(
    stdout.match(new RegExp(`10 ticks, in order, last price ${last}\n`, "g"))?.length,
    3,
  );
  assert.match(stdout, /3 of 3 subscribers exited cleanly/);
});

ipcTest(
  "crash_safe_counter.ts: a worker SIGKILLed while counting loses no count of the shared counter",
  async () => {
    const stdout = await run("crash_safe_counter.ts", ["2", "1000"]);
    const [, first, total, value] = stdout.match(
      /2 workers, the first killed by SIGKILL after (\d+) counts; counts reported: (\d+); counter: (\d+)/,
    )!;
    assert.ok(Number(first) >= 250 && Number(first) < 1000, stdout);
    assert.ok(Number(value) - Number(total) === 0 || Number(value) - Number(total) === 1, stdout);
    assert.match(stdout, /nothing lost, nothing restarted/);
  },
);

ipcTest(
  "shared_rate_limiter.ts: workers in 3 processes share the limit, each client gets min(limit, asked)",
  async () => {
    const stdout = await run("shared_rate_limiter.ts", ["3", "3000"]);
    const [, clients, limited] = stdout.match(
      /3 workers served 9000 requests from (\d+) clients in \d+ ms; (\d+) clients reached/,
    )!;
    assert.ok(Number(limited) > 0 && Number(limited) <= Number(clients), stdout);
    assert.match(stdout, /every client got exactly min\(limit, asked\), across all workers/);
  },
);

ipcTest(
  "shared_lru_cache.ts: the dead owner's lock is recovered and every value is right",
  async () => {
    const stdout = await run("shared_lru_cache.ts", ["2", "500"]);
    assert.match(stdout, /crasher \d+: took the lock, wrote half an entry, and dies/);
    assert.match(stdout, /the lock's owner died mid-update; dropped slot 7/);
    assert.equal(stdout.match(/worker \d+: 500 lookups, \d+ hits, \d+ misses/g)?.length, 2);
    assert.match(stdout, /parent: 2 workers, 1000 lookups: \d+ hits, \d+ misses/);
    assert.match(stdout, /every cached value is right/);
  },
);

ipcTest("central_logger.ts: every line arrives whole, and waiting errors come first", async () => {
  const stdout = await run("central_logger.ts", ["3", "8"]);
  const lines = stdout.split("\n").filter((line) => / \[\d+\] (ERROR|info ) step \d+$/.test(line));
  assert.equal(lines.length, 24);
  assert.match(stdout, /logger: 24 lines from 3 processes, 6 errors/);
  for (const pid of new Set(lines.map((line) => line.match(/\[(\d+)\]/)![1]))) {
    const steps = lines.filter((line) => line.includes(`[${pid}]`)).length;
    assert.equal(steps, 8, `all 8 lines of ${pid}`);
  }
});

ipcTest("mmap_search.ts: finds every planted word without growing the heap", async () => {
  const stdout = await run("mmap_search.ts", ["posix-ipc", "8"], [
    "--allow-ffi",
    "--allow-read",
    "--allow-write",
  ]);
  assert.match(stdout, /searched 8 MiB of a generated file for "posix-ipc"/);
  assert.match(stdout, /found 8 matches; the first at 1000, 1050573, 2100146/);
  const growth = Number(stdout.match(/heap grew by (-?[\d.]+) MiB/)![1]);
  assert.ok(growth < 4, `the heap grew by ${growth} MiB for an 8 MiB file`);
});

ipcTest(
  "request_response.ts: every client process gets its answers, a stream and a RemoteError",
  async () => {
    const name = uniqueName("primes");
    const stdout = await run("request_response.ts", ["3", name]);
    const clients = [...stdout.matchAll(/^client (\d+): connected by (.*)$/gm)];
    assert.equal(clients.length, 3, stdout);
    assert.equal(clients.filter(([, , by]) => by === "the descriptor it was handed").length, 1);
    for (const [, pid] of clients) {
      assert.match(
        stdout,
        new RegExp(
          `client ${pid}: 10 requests in flight; primes among 100..109: 101, 103, 107, 109`,
        ),
      );
      assert.match(
        stdout,
        new RegExp(
          `client ${pid}: streamed 15 primes below 50: 2 3 5 7 11 13 17 19 23 29 31 37 41 43 47`,
        ),
      );
      assert.match(
        stdout,
        new RegExp(`client ${pid}: RemoteError \\(RangeError\\): client \\d+ asked for "factor"`),
      );
    }
    assert.match(stdout, /every client is done; closing$/m);
  },
);

ipcTest(
  "sealed_handoff.ts: the child reads the sealed table; truncate and write are refused",
  async () => {
    const stdout = await run("sealed_handoff.ts", [], ["--allow-all"]);
    assert.match(stdout, /sealed: shrink, grow, write, seal/);
    assert.match(stdout, /mapped 4096 bytes read-only: true; sum of squares 357389824/);
    assert.match(stdout, /truncate to 0: refused by the kernel \(PermissionDenied\)/);
    assert.match(stdout, /write a byte: refused by the kernel \(PermissionDenied\)/);
    assert.match(stdout, /still reads square 1023 = 1046529/);
    assert.match(stdout, /child exited 0/);
  },
);

ipcTest(
  "open_or_create: of 4 workers racing, one creates and seeds the map, all read its config",
  async () => {
    const stdout = await run("open_or_create.ts", ["4"], [...ffiRun, "--allow-read"]);
    assert.equal((stdout.match(/created and seeded the map/g) ?? []).length, 1, stdout);
    assert.equal((stdout.match(/: opened the map/g) ?? []).length, 3, stdout);
    assert.match(stdout, /1 of 4 created the map; all saw the same config: true/);
  },
);

ipcTest(
  "names_by_message.ts: workers open the generated names sent to them; the names go with the owner",
  async () => {
    const stdout = await run("names_by_message.ts", ["3"]);
    const names = stdout.match(/^generated: (.*)$/m)![1]!.split(" ");
    assert.equal(names.length, 3);
    for (const name of names) assert.match(name, /^\/posix-ipc-[0-9a-f]{32}$/);
    assert.match(stdout, /12 jobs done by [1-3] of 3 workers; sum of squares 650/);
    const [jobs, results, ready] = names as [string, string, string];
    for (const path of [`/dev/shm${results}`, `/dev/shm/sem.${ready.slice(1)}`]) {
      assert.throws(() => Deno.statSync(path), Deno.errors.NotFound, path);
    }
    assert.throws(() => MessageQueue.open(jobs), Deno.errors.NotFound);
  },
);

ipcTest("select.ts follows progress, an alert and the worker's exit in one loop", async () => {
  const stdout = await run("select.ts", []);
  for (let step = 1; step <= 5; step++) {
    assert.match(stdout, new RegExp(`progress: \\{"step":${step},"of":5\\}`));
  }
  assert.match(stdout, /ALERT \(priority 5\): disk almost full/);
  assert.match(stdout, /worker exited: \{"state":"exited","code":0,"success":true\}/);
  assert.match(stdout, /done\n$/);
});

ipcTest("select.ts stops its worker on SIGTERM and still ends cleanly", async () => {
  const started = await startUntil("select.ts", [], /progress: \{"step":1/);
  started.child.kill("SIGTERM");
  const { text, status } = await started.rest();
  assert.ok(status.success, text);
  assert.match(text, /SIGTERM: stopping the worker/);
  assert.match(text, /worker exited: \{"state":"signaled","signal":"SIGTERM"/);
  assert.match(text, /done\n$/);
});

ipcTest(
  "fd_broker.ts: each client checked by uid and handed a Channel of its own over a socket",
  async () => {
    const stdout = await run("fd_broker.ts", ["3"], [
      "--allow-ffi",
      "--allow-run",
      "--allow-sys=uid",
    ]);
    const given = [...stdout.matchAll(/broker: gave client (\d+) \(uid (\d+)\) a channel/g)];
    assert.equal(given.length, 3, stdout);
    for (const [, pid, uid] of given) {
      assert.equal(Number(uid), Deno.uid());
      assert.match(stdout, new RegExp(`from ${pid}: "hello"`));
      assert.match(stdout, new RegExp(`from ${pid}: "I am process ${pid}"`));
      assert.match(stdout, new RegExp(`client ${pid} closed its channel`));
    }
    assert.equal(new Set(given.map(([, pid]) => pid)).size, 3);
    assert.match(stdout, /broker: 3 of 3 clients done/);
  },
);

ipcTest(
  "queue_notify.ts: a mailbox woken by notices receives every letter; a rival is Busy",
  async () => {
    const stdout = await run("queue_notify.ts", ["3", "60"]);
    assert.match(stdout, /rival: refused, the mailbox has its one registration \(Busy\)/);
    assert.match(stdout, /180 of 180 letters received in \d+ wake-ups/);
  },
);
