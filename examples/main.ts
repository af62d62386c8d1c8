/**
 * Runs the examples, one per chapter of the Python guide, in order.
 *
 *     deno task example              # every example
 *     deno task example 02           # by number
 *     deno task example thread_pool  # by a part of its name
 *
 * Examples are the files of this folder named `NN_name.ts`; each exports
 * `async function main(): Promise<void>` and runs it when executed directly.
 *
 * @module
 */

/** The guide's chapters, by example number. */
const CHAPTERS: Record<string, string> = {
  "01": "II.1 Creating threads",
  "02": "II.2 ThreadPoolExecutor",
  "03": "II.3 The asynchronous mechanism: futures",
  "04": "II.4 The synchronous mechanism: locks",
  "05": "III.1 Creating processes",
  "06": "III.2 The process pool",
  "07": "III.3 Sharing data between processes",
  "08": "III.4 The synchronous mechanism for processes",
  "09": "IV Queues in threading and multiprocessing",
  "10": "V Process pool vs thread pool",
  "11": "Beyond one machine: the pool and queue over Redis",
};

interface Example {
  /** The file name, such as `02_thread_pool.ts`. */
  file: string;
  /** Its number, such as `02`. */
  number: string;
  /** Its name, such as `thread_pool`. */
  name: string;
  /** The heading printed above it. */
  title: string;
}

/** The example files of this folder, in order. */
async function findExamples(): Promise<Example[]> {
  const examples: Example[] = [];
  for await (const entry of Deno.readDir(new URL(".", import.meta.url))) {
    const match = /^(\d\d)_(.*)\.ts$/.exec(entry.name);
    if (!entry.isFile || match === null) continue;
    const [file, number, name] = match;
    examples.push({ file, number, name, title: CHAPTERS[number] ?? name.replaceAll("_", " ") });
  }
  return examples.sort((a, b) => a.file.localeCompare(b.file));
}

/** The examples that `query` names: a number (`2`, `02`) or a part of a name. */
function select(examples: Example[], query: string): Example[] {
  if (/^\d+$/.test(query)) {
    return examples.filter((example) => Number(example.number) === Number(query));
  }
  const fragment = query.toLowerCase().replace(/\.ts$/, "").replaceAll(/[-\s]/g, "_");
  const exact = examples.filter((example) => example.name === fragment);
  if (exact.length > 0) return exact;
  return examples.filter((example) => example.file.includes(fragment));
}

function listing(examples: Example[]): string {
  const width = Math.max(...examples.map((example) => example.name.length));
  return examples
    .map((example) => `  ${example.number}  ${example.name.padEnd(width)}  ${example.title}`)
    .join("\n");
}

/** Runs the examples named on the command line, or all of them. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const examples = await findExamples();
  if (args.includes("--help") || args.includes("-h")) {
    console.log(`Usage: deno task example [NUMBER | NAME]...\n\nExamples:\n${listing(examples)}`);
    return;
  }
  let chosen = examples;
  if (args.length > 0) {
    chosen = [];
    for (const query of args) {
      const found = select(examples, query);
      if (found.length !== 1) {
        const problem = found.length === 0
          ? `no example matches "${query}"`
          : `"${query}" matches more than one example: ${found.map((e) => e.file).join(", ")}`;
        console.error(
          `error: ${problem}. Available examples:\n${listing(examples)}\n\n` +
            `Pick one by number or by a part of its name, e.g. "deno task example 02" or ` +
            `"deno task example thread_pool".`,
        );
        Deno.exit(1);
      }
      chosen.push(found[0]);
    }
  }

  const start = performance.now();
  for (const [i, example] of chosen.entries()) {
    if (i > 0) console.log();
    console.log(`== ${example.title} (${example.file}) ==`);
    const module = await import(new URL(example.file, import.meta.url).href);
    if (typeof module.main !== "function") {
      console.error(`error: examples/${example.file} does not export a main() function`);
      Deno.exit(1);
    }
    await module.main();
  }
  if (chosen.length > 1) {
    const seconds = ((performance.now() - start) / 1000).toFixed(1);
    console.log(`\nRan ${chosen.length} examples in ${seconds} s.`);
  }
}

if (import.meta.main) await main();
