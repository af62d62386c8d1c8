// A BullMQ worker for bench/redis_bench.ts: concurrency 1, the same tiny task (x + 1).
//   deno run -A bench/_bullmq_worker.ts PORT
// deno-lint-ignore no-import-prefix
import { Worker } from "npm:bullmq@5.47.3";

const connection = { host: "127.0.0.1", port: Number(Deno.args[0]) };
const worker = new Worker("bench", (job) => Promise.resolve(job.data.x + 1), {
  connection,
  concurrency: 1,
});
await worker.waitUntilReady();
console.log("ready");
Deno.addSignalListener("SIGTERM", async () => {
  await worker.close();
  Deno.exit(0);
});
