/**
 * Runs the channel suite and writes bench/REPORT.md and bench/report.svg. The headline figures and
 * the targets come from the natural path, the way a Deno user writes it (async on both sides,
 * `for await` with copies, against a Unix socket written with `Deno.listen` / `Deno.connect`);
 * best-case rows (sync calls, zero-copy views) are shown as such.
 *
 * - bench/channel_bench.ts under `deno bench`: every group, means and percentiles;
 * - bench/fixtures/natural_round_trip.ts: medians of the natural round trip, hot and after 2 ms
 *   idle, Channel and socket taking turns, and the async Atomics floor of the same code shape;
 * - bench/fixtures/natural_stream.ts: medians of 1 MiB batches of 64 KiB and of 64 B messages,
 *   child `await send`, parent `for await`, Channel and socket taking turns;
 * - bench/fixtures/hot_round_trip.ts: medians of the sync round trip (best case) and of the raw
 *   Atomics floor, taking turns;
 * - bench/fixtures/sleeping_peer.ts: sync round trips to a sleeping peer, Channel against
 *   semaphores (best case);
 * - bench/fixtures/idle.ts: the CPU time of an idle receiver over 1 s.
 *
 * The last line printed is the figures as JSON, to compare runs.
 *
 * Run: deno task bench:report
 *
 * @module
 */

import type { Spread } from "./fixtures/natural_trials.ts";

/** One row of `deno bench --json`. */
interface Result {
  group: string;
  name: string;
  baseline: boolean;
  mean: number; // ns
  p75: number; // ns
}

const here = new URL(".", import.meta.url);
/** The package root: its deno.json maps "@posix/ipc" for the benchmarks and their children. */
const root = new URL("..", here).pathname;
const decoder = new TextDecoder();

/** Runs `deno <args>` in the package root and returns what it printed. */
async function deno(args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), { args, cwd: root, stderr: "inherit" })
    .output();
  if (!output.success) throw new Error(`deno ${args.join(" ")} failed`);
  return decoder.decode(output.stdout);
}

async function runBench(): Promise<{ runtime: string; cpu: string; results: Result[] }> {
  const report = JSON.parse(
    await deno(["bench", "--allow-all", "--json", "bench/channel_bench.ts"]),
  );
  const results: Result[] = [];
  for (const bench of report.benches) {
    const ok = bench.results[0]?.ok;
    if (!ok) throw new Error(`${bench.group} / ${bench.name} failed`);
    results.push({
      group: bench.group,
      name: bench.name,
      baseline: bench.baseline,
      mean: ok.avg,
      p75: ok.p75,
    });
  }
  return { runtime: report.runtime, cpu: report.cpu, results };
}

/** Runs one of bench/fixtures/ and parses the JSON that it prints. */
async function fixture<T>(file: string): Promise<T> {
  return JSON.parse(await deno(["run", "--allow-all", `bench/fixtures/${file}`]));
}

function time(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

/** "1.63 µs (p75 2.07 µs)" for a spread in microseconds. */
function spread(of: Spread): string {
  return `${time(of.median * 1e3)} (p75 ${time(of.p75 * 1e3)})`;
}

function groups(results: Result[]): Map<string, Result[]> {
  const map = new Map<string, Result[]>();
  for (const result of results) map.set(result.group, [...(map.get(result.group) ?? []), result]);
  return map;
}

/** How many times faster than the group's baseline (above 1: faster). */
function speedup(result: Result, all: Result[]): number {
  const baseline = all.find((other) => other.baseline)!;
  return baseline.mean / result.mean;
}

/** What a row is: the natural path, a best case, a reference, a baseline, or another way. */
function kind(result: Result): "natural" | "best" | "reference" | "baseline" | "other" {
  if (result.baseline) return "baseline";
  if (result.name.endsWith("(best case)")) return "best";
  if (result.name.endsWith("(reference)")) return "reference";
  return result.name.startsWith("Channel") ? "natural" : "other";
}

const COLOURS = {
  natural: "#1a8a5a",
  best: "#9fd8bc",
  reference: "#d9b36c",
  baseline: "#999",
  other: "#58c",
};

function chart(byGroup: Map<string, Result[]>): string {
  const rowHeight = 18;
  const labelWidth = 440;
  const barWidth = 400;
  const rows: string[] = [];
  let y = 46;
  const maxLog = Math.log10(200);
  const minLog = Math.log10(1 / 20);
  const x = (ratio: number) => ((Math.log10(ratio) - minLog) / (maxLog - minLog)) * barWidth;
  for (const [group, results] of byGroup) {
    rows.push(`<text x="4" y="${y + 12}" font-weight="bold">${escape(group)}</text>`);
    y += rowHeight;
    for (const result of results) {
      const ratio = speedup(result, results);
      const width = Math.max(1, x(Math.min(Math.max(ratio, 1 / 20), 200)));
      rows.push(
        `<text x="12" y="${y + 12}">${escape(result.name)}</text>`,
        `<rect x="${labelWidth}" y="${y + 2}" width="${width.toFixed(1)}" height="${
          rowHeight - 5
        }" fill="${COLOURS[kind(result)]}"/>`,
        `<text x="${(labelWidth + width + 4).toFixed(1)}" y="${y + 12}">${
          ratio >= 1 ? ratio.toFixed(2) + "×" : "1/" + (1 / ratio).toFixed(2)
        }</text>`,
      );
      y += rowHeight;
    }
    y += 6;
  }
  const one = labelWidth + x(1);
  const legend = Object.entries({
    natural: "Channel, natural path",
    best: "Channel, best case",
    baseline: "baseline (Unix socket)",
    other: "other ways",
    reference: "reference",
  }).map(([key, label], i) =>
    `<rect x="${4 + i * 165}" y="26" width="10" height="10" fill="${
      COLOURS[key as keyof typeof COLOURS]
    }"/><text x="${18 + i * 165}" y="35">${label}</text>`
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + barWidth + 80}" height="${
    y + 10
  }" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="4" y="16">Speed against each group's baseline, the Unix socket (mean of deno bench; log scale; the line is 1×)</text>
${legend.join("\n")}
${rows.join("\n")}
<line x1="${one.toFixed(1)}" y1="44" x2="${
    one.toFixed(1)
  }" y2="${y}" stroke="#c33" stroke-dasharray="3,3"/>
</svg>
`;
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function find(results: Result[], group: string, name: string): Result {
  const result = results.find((r) => r.group.startsWith(group) && r.name.startsWith(name));
  if (!result) throw new Error(`no result for ${group} / ${name}`);
  return result;
}

type Pair = { channel: Spread; socket: Spread };
const { runtime, cpu, results } = await runBench();
const natural = await fixture<
  {
    trials: number;
    idleTrials: number;
    hot: Pair & { floor: Spread; yieldingFloor: Spread };
    idle: Pair;
  }
>("natural_round_trip.ts");
const streams = await fixture<{ batches: number } & Record<"64" | "65536", Pair>>(
  "natural_stream.ts",
);
const hot = await fixture<{ trials: number; channel: Spread; atomics: Spread }>(
  "hot_round_trip.ts",
);
type Medians = { channel: number; semaphore: number };
const sleeping = await fixture<{ trials: number; warmup: number; fresh: Medians; warm: Medians }>(
  "sleeping_peer.ts",
);
const idleMicros = Number(
  await deno(["run", "--allow-ffi", "--allow-env", "bench/fixtures/idle.ts"]),
);

const MiB = 1 << 20;
const kib64 = "64 KiB messages";
const b64 = "64 B messages";
const stream64k = find(results, kib64, "Channel, child await send");
const socket64k = find(results, kib64, "Unix socket");
const best64k = find(results, kib64, "Channel, child sendSync");
const stream64 = find(results, b64, "Channel, child await send");
const socket64 = find(results, b64, "Unix socket");
const best64 = find(results, b64, "Channel, child sendSync");
const hotMean = find(results, "64 B round trip between", "Channel, await");
const socketMean = find(results, "64 B round trip between", "Unix socket");
const gbps = (result: Result) => MiB / result.mean; // bytes per ns = GB/s
const perSecond = (result: Result) => (MiB / 64) / result.mean * 1e9;
/** GB/s of a median 1 MiB batch, in µs. */
const batchGBps = (batch: Spread) => MiB / (batch.median * 1e3);
/** Messages a second of a median 1 MiB batch of 64 B messages, in µs. */
const batchPerSecond = (batch: Spread) => (MiB / 64) / batch.median * 1e6;

const figures = {
  hotRoundTrip: {
    channel: natural.hot.channel,
    socket: natural.hot.socket,
    ratio: natural.hot.socket.median / natural.hot.channel.median,
  },
  idleRoundTrip: {
    channel: natural.idle.channel,
    socket: natural.idle.socket,
    ratio: natural.idle.channel.median / natural.idle.socket.median,
  },
  stream64KiB: {
    channelGBps: batchGBps(streams[65536].channel),
    socketGBps: batchGBps(streams[65536].socket),
    ratio: streams[65536].socket.median / streams[65536].channel.median,
    meanChannelGBps: gbps(stream64k),
    meanSocketGBps: gbps(socket64k),
    bestCaseGBps: gbps(best64k),
  },
  stream64B: {
    channelPerSecond: batchPerSecond(streams[64].channel),
    socketPerSecond: batchPerSecond(streams[64].socket),
    meanChannelPerSecond: perSecond(stream64),
    meanSocketPerSecond: perSecond(socket64),
    bestCasePerSecond: perSecond(best64),
  },
  syncRoundTrip: {
    channel: hot.channel,
    atomics: hot.atomics,
    ratio: hot.channel.median / hot.atomics.median,
  },
  idleReceiverPercent: idleMicros / 1e4,
  sleepingSync: sleeping,
};

const million = (n: number) => `${(n / 1e6).toFixed(2)} million/s`;
const targets: [string, string, boolean][] = [
  [
    "hot 64 B round trip, async on both sides: ≥ 20× faster than the Unix socket (medians)",
    `${figures.hotRoundTrip.ratio.toFixed(1)}×: ${spread(natural.hot.channel)} against ${
      spread(natural.hot.socket)
    }`,
    figures.hotRoundTrip.ratio >= 20,
  ],
  [
    "64 KiB one way, child `await send`, parent `for await`: ≥ 5× the socket read into a reused buffer (median 1 MiB batches)",
    `${figures.stream64KiB.ratio.toFixed(2)}×: ${
      figures.stream64KiB.channelGBps.toFixed(2)
    } GB/s against ${figures.stream64KiB.socketGBps.toFixed(2)} GB/s`,
    figures.stream64KiB.ratio >= 5,
  ],
  [
    "round trip after 2 ms idle, async on both sides: ≤ 0.8 of the socket's time (medians)",
    `${figures.idleRoundTrip.ratio.toFixed(2)}: ${spread(natural.idle.channel)} against ${
      spread(natural.idle.socket)
    }`,
    figures.idleRoundTrip.ratio <= 0.8,
  ],
  [
    "sync hot round trip (best case): median within 1.5× of the raw Atomics floor",
    `${figures.syncRoundTrip.ratio.toFixed(2)}×: ${spread(hot.channel)} against ${
      spread(hot.atomics)
    }`,
    figures.syncRoundTrip.ratio <= 1.5,
  ],
  [
    "an idle receiver, `await receive()`: under 1% of a core",
    `${figures.idleReceiverPercent.toFixed(2)}% (${idleMicros} µs of CPU in 1 s)`,
    figures.idleReceiverPercent < 1,
  ],
  [
    "64 B one way, child `await send`, parent `for await`: ≥ 2 million messages a second (median 1 MiB batches)",
    `${million(figures.stream64B.channelPerSecond)} (the socket: ${
      million(figures.stream64B.socketPerSecond)
    })`,
    figures.stream64B.channelPerSecond >= 2e6,
  ],
];

/** The natural path's figures, one sentence each. */
function headline(): string[] {
  const { hotRoundTrip: hot, idleRoundTrip: idle, stream64KiB: big, stream64B: small } = figures;
  const streamRatio = small.channelPerSecond / small.socketPerSecond;
  return [
    `- Hot 64 B round trip: ${spread(hot.channel)}, ${hot.ratio.toFixed(1)}× faster than the ` +
    `Unix socket's ${spread(hot.socket)}; means ${time(hotMean.mean)} and ${
      time(socketMean.mean)
    }.`,
    `- 64 B round trip after 2 ms idle: ${spread(idle.channel)} against the socket's ` +
    `${spread(idle.socket)}: ${idle.ratio.toFixed(2)} of its time.`,
    `- 64 KiB messages, child \`await send\`, parent \`for await\`: ${
      big.channelGBps.toFixed(2)
    } ` +
    `GB/s, ${big.ratio.toFixed(2)}× the socket (${big.socketGBps.toFixed(2)} GB/s).`,
    `- 64 B messages the same way: ${million(small.channelPerSecond)}, ` +
    `${streamRatio.toFixed(1)}× the socket (${million(small.socketPerSecond)}).`,
    `- An idle receiver: ${figures.idleReceiverPercent.toFixed(2)}% of a core.`,
  ];
}

const lines: string[] = [
  "# @posix/ipc benchmark report",
  "",
  `Generated by \`deno task bench:report\` on ${
    new Date().toISOString().slice(0, 10)
  }: ${runtime}, ${cpu}, ` +
  `${navigator.hardwareConcurrency} cores, shared with other work. ` +
  "Every figure comes from one run, and every ratio compares results of the same run.",
  "",
  "The headline and the targets measure the natural path, the way a Deno user writes it: `await send` " +
  "and `await receive()` or `for await` on both sides, each message a copy, against a Unix socket from " +
  "`Deno.listen` / `Deno.connect` with async reads (into a reused buffer) and writes. Every peer is a " +
  "child that the measuring process spawns the same way, and clocks start after start-up. Medians come " +
  "from fixtures that time trips or batches one by one, the Channel and the socket taking turns: " +
  `bench/fixtures/natural_round_trip.ts (${natural.trials} hot trips of each in blocks of 500, after as ` +
  `many to warm up, and ${natural.idleTrials} of each after 2 ms of silence) and ` +
  `bench/fixtures/natural_stream.ts (${streams.batches} batches of 1 MiB of each, in blocks of 6, after untimed batches that warm up V8). ` +
  'The tables below are means of `deno bench` (bench/channel_bench.ts). Rows marked "(best case)" ' +
  'use sync calls, zero-copy views and spinning peers; "(reference)" rows are no way between processes.',
  "",
  "## Headline (natural path)",
  "",
  ...headline(),
  "",
  "![speed-ups against each group's baseline](report.svg)",
  "",
  "## Targets",
  "",
  "| target | measured | met |",
  "| --- | --- | --- |",
  ...targets.map(([target, measured, met]) =>
    `| ${target} | ${measured} | ${met ? "yes" : "**no**"} |`
  ),
  "",
  "## Best case and references",
  "",
  "| | measured |",
  "| --- | --- |",
  `| async floor: the natural round trip's code shape (await send, for await, await receive) over one Int32 cell, median of ${natural.trials} | ${
    spread(natural.hot.floor)
  } |`,
  `| yielding async floor: the same, each look that finds nothing yielding the CPU (the floor when both processes share one CPU), median of ${natural.trials} | ${
    spread(natural.hot.yieldingFloor)
  } |`,
  `| raw floor: two processes spinning on one Int32 cell (Atomics.load/store), median of ${hot.trials} | ${
    spread(hot.atomics)
  } |`,
  `| Channel, sendSync / receiveSync view, echo peer spinning (best case), median of ${hot.trials} | ${
    spread(hot.channel)
  } |`,
  `| 64 KiB, child sendSync, parent receiveSync view (best case) | ${
    figures.stream64KiB.bestCaseGBps.toFixed(2)
  } GB/s |`,
  `| 64 B, child sendSync, parent receiveSync view (best case) | ${
    million(figures.stream64B.bestCasePerSecond)
  } |`,
  `| sync round trip to a sleeping peer against semaphores (best case), medians of ${sleeping.trials} in turns, after ${sleeping.warmup} | ${
    (sleeping.warm.channel / sleeping.warm.semaphore).toFixed(2)
  }× (${time(sleeping.warm.channel * 1e3)} against ${
    time(sleeping.warm.semaphore * 1e3)
  }); in new processes ${(sleeping.fresh.channel / sleeping.fresh.semaphore).toFixed(2)}× |`,
  "",
];
for (const [group, entries] of groups(results)) {
  lines.push(
    `## ${group}`,
    "",
    "| | mean | p75 | against the baseline |",
    "| --- | --- | --- | --- |",
  );
  for (const result of entries) {
    const ratio = speedup(result, entries);
    const against = result.baseline
      ? "baseline"
      : ratio >= 1
      ? `${ratio.toFixed(2)}× faster`
      : `${(1 / ratio).toFixed(2)}× slower`;
    lines.push(`| ${result.name} | ${time(result.mean)} | ${time(result.p75)} | ${against} |`);
  }
  lines.push("");
}
await Deno.writeTextFile(new URL("REPORT.md", here), lines.join("\n"));
await Deno.writeTextFile(new URL("report.svg", here), chart(groups(results)));
// Laid out as `deno fmt --check` in CI wants them.
await deno(["fmt", "--quiet", "bench/REPORT.md", "bench/report.svg"]);
console.log(lines.join("\n"));
console.log(JSON.stringify(figures));
