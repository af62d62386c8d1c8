/**
 * Guide chapter II.1, "Creating a thread". Mirrors Python's
 *
 *     t1 = threading.Thread(target=_counter, args=(5,), name="khanh thread")
 *     t2 = threading.Thread(target=_counter, args=(5,), name="ai thread")
 *     t1.start(); t2.start()
 *     t1.join(); t2.join()
 *
 * A `Thread` runs one function on its own Web Worker. The function is named by
 * module URL with `tasks()`, so the worker can import it.
 *
 * @module
 */

import { tasks, Thread } from "../mod.ts";

const work = tasks<typeof import("./_work.ts")>(new URL("./_work.ts", import.meta.url));

/** Runs the example. */
export async function main(): Promise<void> {
  const khanh = new Thread({ target: work.counter, args: [5, 100], name: "khanh thread" });
  const ai = new Thread({ target: work.counter, args: [5, 100], name: "ai thread" });
  console.log(`before start: ${khanh.name}.isAlive = ${khanh.isAlive}`);

  khanh.start();
  // Start the second thread half a step later, so that their lines alternate.
  await new Promise((resolve) => setTimeout(resolve, 50));
  ai.start();
  console.log(`after start:  ${khanh.name}.isAlive = ${khanh.isAlive}`);

  // join() waits for the thread and returns what its target returned.
  const results = [await khanh.join(), await ai.join()];
  console.log(`after join:   ${khanh.name}.isAlive = ${khanh.isAlive}`);
  console.log("join() returned:", results);

  // Without a name, a thread is called "Thread-N", as in Python.
  const anonymous = new Thread({ target: work.counter, args: [1, 0] }).start();
  console.log(`a thread with no name is called "${anonymous.name}"`);
  await anonymous.join();
}

if (import.meta.main) await main();
