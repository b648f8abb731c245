import assert from "node:assert/strict";
import { assertSucceeded, ipcTest, runDeno } from "./helpers.ts";

const demo = new URL("../examples/demo.ts", import.meta.url).pathname;

ipcTest(
  "the demo: a child opens the parent's segment by name, and both see each other's writes",
  async () => {
    const output = assertSucceeded(
      await runDeno(demo, [], { flags: ["--allow-ffi", "--allow-read", "--allow-run"] }),
    );
    const lines = output.stdout.trim().split("\n");
    const parentPid = lines[0]!.match(/^parent (\d+)/)![1];
    assert.match(
      output.stdout,
      new RegExp(
        `child \\d+ +opened "/posix-ipc-demo-${parentPid}" by name and read: "hello from parent ${parentPid}"`,
      ),
    );
    assert.match(output.stdout, /read the child's reply: "hello back from child \d+"/);
    assert.match(output.stdout, /shared counter = 200000 /);
  },
);
