import assert from "node:assert/strict";
import {
  decodeWaitStatus,
  isAlive,
  OwnedFd,
  pipe,
  SharedMemory,
  spawn,
  spawnDeno,
} from "../mod.ts";
import { assertSucceeded, fixture, ipcTest, runDeno, tempFile, thrown } from "./helpers.ts";
import { delay } from "../src/_wait.ts";

const decoder = new TextDecoder();

async function text(stream: ReadableStream<Uint8Array> | undefined): Promise<string> {
  return stream ? await new Response(stream).text() : "";
}

ipcTest("grep | sort -uf | wc -l built from pipe() and spawn() matches the shell", async () => {
  const words = ["apple", "Apple", "banana", "apricot", "APRICOT", "cherry", "grape", "apple"];
  const path = tempFile(words.join("\n") + "\n");
  try {
    using first = pipe();
    using second = pipe();
    const grep = spawn("grep", { args: ["-i", "^a\\|e$", path], stdout: first.writer });
    const sort = spawn("sort", { args: ["-uf"], stdin: first.reader, stdout: second.writer });
    const wc = spawn("wc", { args: ["-l"], stdin: second.reader, stdout: "piped" });
    first.reader.close(), first.writer.close(), second.reader.close(), second.writer.close();
    const ours = decoder.decode((await wc.output()).stdout).trim();
    assert.equal((await grep.status).success, true);
    assert.equal((await sort.status).success, true);
    const shell = spawn("sh", {
      args: ["-c", `grep -i '^a\\|e$' ${path} | sort -uf | wc -l`],
      stdout: "piped",
    });
    assert.equal(ours, decoder.decode((await shell.output()).stdout).trim());
    assert.equal(ours, "3"); // apple, apricot, grape: "Apple" and "APRICOT" fold into them
  } finally {
    Deno.removeSync(path);
  }
});

ipcTest("a Deno child gets a pipe end at fd 3 and anonymous shared memory at fd 4", async () => {
  using p = pipe();
  using memory = SharedMemory.anonymous({ size: 4096 });
  const child = spawnDeno(fixture("fd_child.ts"), {
    args: ["pipe-and-memory"],
    permissions: { ffi: true },
    fds: { 3: p.writer, 4: memory },
    stderr: "piped",
  });
  p.writer.close();
  const line = await text(p.reader.readable);
  const { status, stderr } = await child.output();
  assert.ok(status.success, decoder.decode(stderr));
  assert.equal(line, `pipe from ${child.pid}\n`);
  const bytes = memory.bytes;
  assert.equal(decoder.decode(bytes.subarray(0, bytes.indexOf(0))), `memory from ${child.pid}`);
});

ipcTest("the child receives exactly fds 0, 1, 2 and those it was given", async () => {
  using p = pipe();
  using memory = SharedMemory.anonymous({ size: 64 });
  using unrelated = new OwnedFd(memory.fd).dup();
  unrelated.inheritable = true; // even an inheritable descriptor is not passed unless asked
  await using child = spawn("sleep", { args: ["30"], fds: { 3: p.writer, 7: memory } });
  // While the dynamic loader and locale setup of `sleep` run, a file they read is open for a
  // moment (as fd 4), so wait for the list to settle; a descriptor passed by mistake never goes.
  const listFds = () =>
    [...Deno.readDirSync(`/proc/${child.pid}/fd`)]
      .map((entry) => Number(entry.name))
      .sort((a, b) => a - b);
  const expected = [0, 1, 2, 3, 7];
  let fds = listFds();
  for (let tries = 0; tries < 100 && String(fds) !== String(expected); tries++) {
    await delay(20);
    fds = listFds();
  }
  assert.deepEqual(fds, expected);
  assert.match(Deno.readLinkSync(`/proc/${child.pid}/fd/3`), /^pipe:/);
  assert.match(Deno.readLinkSync(`/proc/${child.pid}/fd/7`), /memfd:posix-ipc/);
  child.kill("SIGKILL");
});

ipcTest("descriptors whose numbers overlap between parent and child land where asked", async () => {
  using a = pipe();
  using b = pipe();
  // Swap: the child's fd 3 and 4 are two pipes, whatever numbers the parent has them under.
  const child = spawn("sh", {
    args: ["-c", "echo to-a >&3; echo to-b >&4"],
    fds: [[3, b.writer], [4, a.writer]],
  });
  a.writer.close(), b.writer.close();
  assert.equal(await text(b.reader.readable), "to-a\n");
  assert.equal(await text(a.reader.readable), "to-b\n");
  assert.ok((await child.status).success);
});

/** The processes of a group, from /proc. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") members.push(Number(entry.name));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

async function until(condition: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

ipcTest("processGroup: true, then killGroup ends the child and its own children", async () => {
  const child = spawn("sh", { args: ["-c", "sleep 60 & sleep 60 & wait"], processGroup: true });
  assert.equal(child.pgid, child.pid);
  assert.ok(await until(() => groupMembers(child.pgid).length === 3), "the shell and two sleeps");
  const sleeps = groupMembers(child.pgid).filter((pid) => pid !== child.pid);
  child.killGroup("SIGTERM");
  const status = await child.status;
  assert.equal(status.state, "signaled");
  assert.equal(status.state === "signaled" && status.signal, "SIGTERM");
  assert.ok(await until(() => groupMembers(child.pgid).length === 0), "every member is gone");
  for (const pid of sleeps) assert.equal(groupMembers(child.pgid).includes(pid), false);
});

ipcTest("killGroup() refuses a child that shares this process's group", async () => {
  await using child = spawn("sleep", { args: ["30"] });
  assert.throws(
    () => child.killGroup(),
    /this process's own group; spawn the child with processGroup/,
  );
});

ipcTest("SIGPIPE is default in children: yes | head -1 ends at once", async () => {
  using p = pipe();
  const yes = spawn("yes", { stdout: p.writer });
  const head = spawn("head", { args: ["-1"], stdin: p.reader, stdout: "piped" });
  p.reader.close(), p.writer.close();
  assert.equal(decoder.decode((await head.output()).stdout), "y\n");
  const status = await yes.status;
  assert.equal(status.state === "signaled" && status.signal, "SIGPIPE");
});

ipcTest(
  "resetSignals: false keeps the parent's ignored SIGPIPE, so yes sees EPIPE instead",
  async () => {
    using p = pipe();
    const yes = spawn("yes", { stdout: p.writer, stderr: "null", resetSignals: false });
    const head = spawn("head", { args: ["-1"], stdin: p.reader, stdout: "null" });
    p.reader.close(), p.writer.close();
    await head.status;
    const status = await yes.status;
    assert.equal(status.state, "exited");
    assert.equal(status.success, false);
  },
);

ipcTest("signalMask starts the child with those signals blocked", async () => {
  // grep itself, not through sh: dash clears its signal mask when it starts.
  const child = spawn("grep", {
    args: ["SigBlk", "/proc/self/status"],
    stdout: "piped",
    signalMask: ["SIGUSR1", "SIGTERM"],
  });
  const line = decoder.decode((await child.output()).stdout);
  const mask = BigInt(`0x${line.split(/\s+/)[1]}`);
  assert.equal(mask, (1n << 9n) | (1n << 14n)); // bits of signals 10 and 15
});

ipcTest(
  "a Deno child that listens with onSignal reports each SIGUSR1 the parent sends",
  async () => {
    const child = spawnDeno(fixture("signal_child.ts"), {
      permissions: { ffi: true },
      stdout: "piped",
    });
    const lines = child.stdout!.readable.pipeThrough(new TextDecoderStream()).values();
    let buffered = "";
    const nextLine = async () => {
      while (!buffered.includes("\n")) buffered += (await lines.next()).value ?? "\n";
      const line = buffered.slice(0, buffered.indexOf("\n"));
      buffered = buffered.slice(buffered.indexOf("\n") + 1);
      return line;
    };
    assert.equal(await nextLine(), "ready");
    for (let i = 1; i <= 3; i++) {
      child.kill("SIGUSR1");
      assert.equal(await nextLine(), `SIGUSR1 ${i}`);
    }
    assert.ok((await child.status).success);
    await lines.return?.();
  },
);

ipcTest(
  "exit codes and signals are decoded: exit 3, SIGKILL, SIGSEGV with its core flag",
  async () => {
    assert.deepEqual(await spawn("sh", { args: ["-c", "exit 3"] }).status, {
      state: "exited",
      code: 3,
      success: false,
    });
    assert.deepEqual(await spawn("true").status, { state: "exited", code: 0, success: true });
    const killed = await spawn("sh", { args: ["-c", "kill -KILL $$"] }).status;
    assert.deepEqual(killed, {
      state: "signaled",
      signal: "SIGKILL",
      signalNumber: 9,
      coreDumped: false,
      success: false,
    });

    const dir = Deno.makeTempDirSync();
    try {
      const crash = spawn("sh", {
        args: ["-c", "ulimit -c unlimited 2>/dev/null; kill -SEGV $$"],
        cwd: dir,
      });
      const status = await crash.status;
      assert.equal(status.state === "signaled" && status.signal, "SIGSEGV");
      const coreWritten = [...Deno.readDirSync(dir)].some((entry) => entry.name.startsWith("core"));
      const pattern = Deno.readTextFileSync("/proc/sys/kernel/core_pattern").trim();
      if (!pattern.startsWith("|")) {
        assert.equal(
          status.state === "signaled" && status.coreDumped,
          coreWritten,
          "the flag says whether a core was written",
        );
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
    assert.deepEqual(decodeWaitStatus(0x80 | 11), {
      state: "signaled",
      signal: "SIGSEGV",
      signalNumber: 11,
      coreDumped: true,
      success: false,
    });
    assert.deepEqual(decodeWaitStatus(15), {
      state: "signaled",
      signal: "SIGTERM",
      signalNumber: 15,
      coreDumped: false,
      success: false,
    });
    assert.deepEqual(decodeWaitStatus(255 << 8), { state: "exited", code: 255, success: false });
  },
);

function zombiesAndChildren(): { children: number[]; zombies: number[] } {
  const children: number[] = [];
  for (const task of Deno.readDirSync("/proc/self/task")) {
    const listed = Deno.readTextFileSync(`/proc/self/task/${task.name}/children`).trim();
    if (listed) children.push(...listed.split(/\s+/).map(Number));
  }
  const zombies = children.filter((pid) => {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
    } catch {
      return false;
    }
  });
  return { children, zombies };
}

ipcTest("no zombies: 200 short children that nobody awaits are all reaped", async () => {
  const children = Array.from({ length: 200 }, () => spawn("true"));
  assert.ok(
    await until(() => zombiesAndChildren().children.length === 0, 20_000),
    "every child reaped",
  );
  assert.deepEqual(zombiesAndChildren().zombies, []);
  assert.ok(children.every((child) => child.exited));
});

ipcTest("await using ends a child that ignores SIGTERM with SIGKILL after the grace", async () => {
  let child;
  let disposing = 0;
  {
    await using ignoring = spawn("sh", {
      args: ["-c", "trap '' TERM; exec sleep 60"],
      killGrace: 300,
    });
    child = ignoring;
    await until(() => Deno.readTextFileSync(`/proc/${child!.pid}/cmdline`).startsWith("sleep"));
    disposing = performance.now(); // the dispose alone is timed, not the child's start
  }
  const elapsed = performance.now() - disposing;
  const status = await child.status;
  assert.equal(status.state === "signaled" && status.signal, "SIGKILL");
  assert.ok(elapsed >= 300 && elapsed < 5000, `ended after ${elapsed} ms`);
  assert.equal(isAlive(child.pid) && zombiesAndChildren().children.includes(child.pid), false);
  assert.throws(() => child.kill(), /already exited/);
});

ipcTest("await using a child that obeys SIGTERM ends at once", async () => {
  const started = performance.now();
  let child;
  {
    await using sleeping = spawn("sleep", { args: ["60"] });
    child = sleeping;
  }
  assert.ok(performance.now() - started < 1000);
  const status = await child.status;
  assert.equal(status.state === "signaled" && status.signal, "SIGTERM");
});

ipcTest("bad input is a clear error before anything is spawned", () => {
  using p = pipe();
  const closed = new OwnedFd(new OwnedFd(p.writer.fd).dup().release());
  closed.close();
  const cases: [() => unknown, new (...args: never[]) => Error, RegExp][] = [
    [() => spawn("true", { fds: { 2: p.writer } }), RangeError, /child fd 2 must be from 3 to 255/],
    [() => spawn("true", { fds: { [-1]: p.writer } }), RangeError, /child fd -1 must be from 3/],
    [() => spawn("true", { fds: [[3.5, p.writer]] }), TypeError, /child fd 3.5 must be an integer/],
    [
      () => spawn("true", { fds: [[3, p.writer], [3, p.reader]] }),
      TypeError,
      /child fd 3 is given twice/,
    ],
    [() => spawn("true", { fds: { 3: closed } }), Deno.errors.BadResource, /closed/],
    [
      () => spawn("true", { fds: { 3: 999_999 } }),
      Deno.errors.BadResource,
      /hand file descriptor 999999 .* as fd 3: bad file descriptor/,
    ],
    [
      () => spawn("true", { signalMask: ["SIGNOPE" as "SIGINT"] }),
      TypeError,
      /"SIGNOPE": it is not a signal/,
    ],
    [() => spawn("true", { stdin: "pipe" as "piped" }), TypeError, /stdio "pipe" must be/],
    [() => spawn("true", { processGroup: -4 }), RangeError, /processGroup -4/],
    [() => spawn("true", { args: ["a\0b"] }), TypeError, /without NUL/],
    [() => spawn(""), TypeError, /non-empty string/],
    [() => spawn("true", { env: { "A=B": "c" } }), TypeError, /environment variable A=B/],
  ];
  for (const [call, ErrorClass, message] of cases) {
    const error = thrown(call);
    assert.ok(error instanceof ErrorClass, `${message}: got ${error}`);
    assert.match(String(error), message);
  }
  assert.deepEqual(zombiesAndChildren().children, [], "nothing was spawned");
});

ipcTest(
  "a missing program or cwd is NotFound naming it; a non-executable one PermissionDenied",
  async () => {
    assert.throws(
      () => spawn("no-such-program-here"),
      (error: unknown) =>
        error instanceof Deno.errors.NotFound &&
        /"no-such-program-here": not found \(ENOENT\): not in PATH/.test(String(error)),
    );
    assert.throws(
      () => spawn("/no/such/program"),
      (error: unknown) =>
        error instanceof Deno.errors.NotFound && /"\/no\/such\/program"/.test(String(error)),
    );
    assert.throws(
      () => spawn("true", { cwd: "/no/such/dir" }),
      (error: unknown) =>
        error instanceof Deno.errors.NotFound &&
        /working directory "\/no\/such\/dir"/.test(String(error)),
    );
    const script = tempFile("#!/bin/sh\necho hi\n");
    try {
      assert.throws(() => spawn(script), Deno.errors.PermissionDenied);
      Deno.chmodSync(script, 0o700);
      assert.ok((await spawn(script, { stdout: "null" }).status).success);
    } finally {
      Deno.removeSync(script);
    }
  },
);

ipcTest(
  "env is merged with the parent's unless clearEnv; cwd and args reach the child",
  async () => {
    const dir = Deno.realPathSync(Deno.makeTempDirSync());
    try {
      const merged = spawn("sh", {
        args: ["-c", 'echo "$FOO|$HOME|$(pwd)|$0|$1"', "zero", "one"],
        env: { FOO: "bar" },
        cwd: dir,
        stdout: "piped",
      });
      assert.equal(
        decoder.decode((await merged.output()).stdout),
        `bar|${Deno.env.get("HOME")}|${dir}|zero|one\n`,
      );
      const cleared = spawn("/bin/sh", {
        args: ["-c", 'echo "$FOO|${HOME:-none}"'],
        env: { FOO: "only" },
        clearEnv: true,
        stdout: "piped",
      });
      assert.equal(decoder.decode((await cleared.output()).stdout), "only|none\n");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

ipcTest("piped stdin, stdout and stderr; null stdio; output() collects them", async () => {
  const cat = spawn("sh", {
    args: ["-c", "cat; echo err >&2"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  await cat.stdin!.write(new TextEncoder().encode("through cat"));
  const { status, stdout, stderr } = await cat.output();
  assert.ok(status.success);
  assert.equal(decoder.decode(stdout), "through cat");
  assert.equal(decoder.decode(stderr), "err\n");
  const quiet = spawn("sh", { args: ["-c", "cat; echo out"], stdin: "null", stdout: "null" });
  assert.ok((await quiet.status).success);
});

ipcTest("spawning needs --allow-run, as Deno.Command does", async () => {
  const denied = await runDeno(fixture("fd_child.ts"), ["spawn"], {
    flags: ["--allow-ffi", "--allow-read"],
  });
  assert.notEqual(denied.code, 0);
  assert.match(
    denied.stderr,
    /NotCapable: Requires run access to "true" \(found at "\/[^"]*\/true"\), run again with the --allow-run flag/,
  );
  assertSucceeded(
    await runDeno(fixture("fd_child.ts"), ["spawn"], {
      flags: ["--allow-ffi", "--allow-read", "--allow-run=true"],
    }),
  );
});

ipcTest("inheritedFd() of a descriptor the parent did not pass is BadResource", async () => {
  const output = await runDeno(fixture("fd_child.ts"), ["missing", "200"], {
    flags: ["--allow-ffi"],
  });
  assert.match(
    output.stderr,
    /BadResource: Cannot use inherited file descriptor 200: bad file descriptor \(EBADF\): the parent did not pass it/,
  );
});

ipcTest(
  "spawn() checks --allow-run against the program the child would run, as Deno.Command does",
  async () => {
    const evil = Deno.makeTempDirSync();
    try {
      Deno.writeTextFileSync(`${evil}/sh`, "#!/bin/sh\necho evil\n", { mode: 0o755 });
      const cases = [
        "plain",
        "path-evil",
        "clear-evil",
        "absolute-evil",
        "cwd-evil",
        "ld-preload",
        "ld-lower",
        "ld-empty",
      ];
      const expected: Record<string, Record<string, string>> = {
        "--allow-run=sh": {
          plain: "ran:ok",
          "path-evil": "NotCapable",
          "clear-evil": "NotCapable",
          "absolute-evil": "NotCapable",
          "cwd-evil": "NotCapable",
          "ld-preload": "NotCapable",
          "ld-lower": "NotCapable",
          "ld-empty": "ran:ok",
        },
        [`--allow-run=${evil}/sh`]: {
          plain: "NotCapable",
          "path-evil": "ran:evil",
          "clear-evil": "ran:evil",
          "absolute-evil": "ran:evil",
          "cwd-evil": "ran:evil",
          "ld-preload": "NotCapable",
          "ld-lower": "NotCapable",
          "ld-empty": "NotCapable",
        },
        "--allow-run": {
          plain: "ran:ok",
          "path-evil": "ran:evil",
          "clear-evil": "ran:evil",
          "absolute-evil": "ran:evil",
          "cwd-evil": "ran:evil",
          "ld-preload": "ran:ok",
          "ld-lower": "ran:ok",
          "ld-empty": "ran:ok",
        },
      };
      for (const [flag, outcomes] of Object.entries(expected)) {
        const output = assertSucceeded(
          await runDeno(fixture("spawn_permissions.ts"), [evil, ...cases], {
            flags: ["--allow-ffi", flag],
            timeout: 30_000,
          }),
        );
        const lines = output.stdout.trim().split("\n");
        for (const [i, name] of cases.entries()) {
          const outcome = outcomes[name]!;
          assert.equal(lines[i], `${name} ours=${outcome} deno=${outcome}`, flag);
        }
      }
    } finally {
      Deno.removeSync(evil, { recursive: true });
    }
  },
);

ipcTest("the LD_* refusal names the variables, as Deno's does", async () => {
  const output = await runDeno(
    `data:text/javascript,${
      encodeURIComponent(`
      import { spawn } from "${new URL("../mod.ts", import.meta.url).href}";
      try {
        spawn("true", { env: { LD_PRELOAD: "x", DYLD_INSERT_LIBRARIES: "y" } });
      } catch (error) {
        console.log(error.message);
      }
    `)
    }`,
    [],
    {
      flags: ["--allow-ffi", "--allow-run=true", "--allow-import", "--allow-read"],
      timeout: 30_000,
    },
  );
  assert.equal(
    output.stdout.trim(),
    "Requires --allow-run permissions to spawn subprocess with DYLD_INSERT_LIBRARIES, LD_PRELOAD " +
      "environment variables. Alternatively, spawn with these environment variables unset.",
    output.stderr,
  );
});

ipcTest("a relative program runs from a relative working directory", async () => {
  const dir = Deno.realPathSync(Deno.makeTempDirSync());
  try {
    Deno.mkdirSync(`${dir}/sub`);
    Deno.writeTextFileSync(`${dir}/sub/hello.sh`, "#!/bin/sh\necho hello from $(pwd)\n", {
      mode: 0o755,
    });
    const child = spawnDeno(fixture("spawn_relative.ts"), {
      cwd: dir,
      permissions: { ffi: true, run: true },
      stdout: "piped",
      stderr: "piped",
    });
    const { status, stdout, stderr } = await child.output();
    assert.ok(status.success, decoder.decode(stderr));
    assert.equal(decoder.decode(stdout), `hello from ${dir}/sub\n`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

ipcTest("spawnDeno() refuses permissions and flags of the wrong shape", () => {
  const module = fixture("fd_child.ts");
  const bad: unknown[] = [
    ["--allow-ffi"],
    "ALL",
    "",
    true,
    null,
    { ffi: "yes" },
    { ffi: 1 },
    { read: "/tmp" },
    { read: ["/a,b"] },
    { read: [""] },
    { read: [1] },
    { read: ["a\0b"] },
    { toString: true },
    { constructor: true },
    JSON.parse('{"__proto__": true}'),
    { hrtime: true },
    new Map([["ffi", true]]),
  ];
  for (const permissions of bad) {
    assert.throws(
      () => spawnDeno(module, { permissions: permissions as "all" }),
      TypeError,
      JSON.stringify(permissions),
    );
  }
  assert.throws(() => spawnDeno(module, { permissions: { read: ["/a,b"] } }), /contains a comma/);
  for (const denoFlags of ["--allow-all", ["evil.ts"], [1], ["-A\0"]]) {
    assert.throws(
      () => spawnDeno(module, { denoFlags: denoFlags as string[] }),
      TypeError,
      String(denoFlags),
    );
  }
  assert.throws(() => spawnDeno("--allow-all"), TypeError);
  assert.throws(() => spawnDeno(""), TypeError);
  assert.deepEqual(zombiesAndChildren().children, [], "nothing was spawned");
});

ipcTest("spawnDeno() grants each listed path, and only those", async () => {
  const child = spawnDeno(
    `data:text/javascript,${
      encodeURIComponent(
        `for (const path of ["/a", "/b", "/c"]) console.log(path, Deno.permissions.querySync({ name: "read", path }).state);`,
      )
    }`,
    { permissions: { read: ["/a", "/b"], ffi: false, net: [] }, stdout: "piped" },
  );
  const { status, stdout } = await child.output();
  assert.ok(status.success);
  assert.equal(decoder.decode(stdout), "/a granted\n/b granted\n/c prompt\n");
});

ipcTest(
  "killGrace: Infinity never sends SIGKILL, and 2^31 ms or more waits, not 1 ms",
  async () => {
    const graces = [Infinity, 2 ** 31, 2 ** 32 + 5, 1e300];
    const children = graces.map((killGrace) =>
      spawn("sh", { args: ["-c", "trap '' TERM; exec sleep 60"], killGrace })
    );
    for (const child of children) {
      await until(() => Deno.readTextFileSync(`/proc/${child.pid}/cmdline`).startsWith("sleep"));
    }
    const disposals = children.map((child) => child[Symbol.asyncDispose]());
    await delay(500);
    for (const [i, child] of children.entries()) {
      assert.equal(child.exited, false, `killGrace ${graces[i]}: no SIGKILL yet`);
      child.kill("SIGKILL");
    }
    await Promise.all(disposals);
    for (const child of children) {
      const status = await child.status;
      assert.equal(status.state === "signaled" && status.signal, "SIGKILL");
    }
  },
);

ipcTest("killGrace must be a number of ms >= 0 or Infinity", () => {
  for (const killGrace of [NaN, -1, -Infinity]) {
    assert.throws(() => spawn("true", { killGrace }), RangeError, String(killGrace));
  }
  for (const killGrace of ["100", 10n, null]) {
    assert.throws(() => spawn("true", { killGrace: killGrace as unknown as number }), TypeError);
  }
  assert.deepEqual(zombiesAndChildren().children, [], "nothing was spawned");
});

/** An assert.throws() matcher: an error of `kind` whose message includes `text`. */
function failsWith(kind: new (...args: never[]) => Error, text: string) {
  return (error: unknown) => {
    assert.ok(error instanceof kind, `expected a ${kind.name}, got ${error}`);
    assert.ok(error.message.includes(text), `"${error.message}" lacks "${text}"`);
    return true;
  };
}

ipcTest(
  "hostile spawn options are TypeErrors or RangeErrors of their own, and spawn nothing",
  () => {
    const hostile = Object.create(null);
    const cases: [() => unknown, new (...args: never[]) => Error, string][] = [
      [() => spawn("/dev/null", { fds: null as never }), TypeError, "fds null must be"],
      [() => spawn("/dev/null", { fds: 3 as never }), TypeError, "fds 3 must be"],
      [() => spawn("/dev/null", { fds: [3] as never }), TypeError, "fds entry 3 must be"],
      [() => spawn("/dev/null", { fds: [[hostile, 1]] as never }), TypeError, "child fd an object"],
      [() => spawn("/dev/null", { fds: [[Symbol("k"), 1]] as never }), TypeError, "Symbol(k)"],
      [() => spawn("/dev/null", null as never), TypeError, "spawn() options"],
      [() => spawn("/dev/null", "x" as never), TypeError, "spawn() options"],
      [() => spawnDeno("x.ts", [] as never), TypeError, "spawnDeno() options"],
      [() => spawnDeno("x.ts", { args: "a" as never }), TypeError, "must be an array"],
      [() => spawn(hostile), TypeError, "non-empty string"],
      [() => spawnDeno(hostile), TypeError, "module must be a path"],
      [() => spawn("/dev/null", { args: [hostile] }), TypeError, "argument an object"],
      [() => spawn("/dev/null", { signalMask: "SIGINT" as never }), TypeError, "signalMask"],
      [() => spawn("/dev/null", { processGroup: Symbol() as never }), TypeError, "processGroup"],
      [() => spawn("/dev/null", { processGroup: 2 ** 31 }), RangeError, "processGroup"],
      [() => spawn("/dev/null", { killGrace: hostile }), TypeError, "killGrace"],
      [() => spawn("true", { stdin: hostile }), TypeError, "stdio fd 0"],
      [() => spawn("/dev/null", { env: 5 as never }), TypeError, "env 5"],
      [() => spawn("/dev/null", { clearEnv: "yes" as never }), TypeError, "clearEnv"],
    ];
    for (const [i, [call, kind, text]] of cases.entries()) {
      assert.throws(call, failsWith(kind, text), `case ${i}`);
    }
    assert.deepEqual(zombiesAndChildren().children, [], "nothing was spawned");
  },
);

Deno.test("decodeWaitStatus() refuses what is no wait status with a TypeError or RangeError", () => {
  for (const bad of [0n, "0", null, undefined, Object.create(null), Symbol()]) {
    assert.throws(() => decodeWaitStatus(bad as never), failsWith(TypeError, "wait status"));
  }
  for (const bad of [NaN, 1.5, -2, 2 ** 31, Infinity]) {
    assert.throws(() => decodeWaitStatus(bad), failsWith(RangeError, "wait status"));
  }
  assert.deepEqual(decodeWaitStatus(-0), { state: "exited", code: 0, success: true });
  assert.deepEqual(decodeWaitStatus(-1), { state: "lost", success: false });
});

Deno.test("new ChildProcess() from JavaScript is a TypeError", () => {
  const child = spawn("true");
  const Unchecked = child.constructor as new (...args: unknown[]) => unknown;
  assert.throws(() => new Unchecked(-1, {}, null, 0), failsWith(TypeError, "Illegal constructor"));
  return child.status.then(() => {});
});
