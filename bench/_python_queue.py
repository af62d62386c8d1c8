# The Python peer of bench/queue_process_bench.ts: a long-lived parent with a
# multiprocessing.Queue and a child Process. For each "queue N" read on stdin,
# the parent puts the ints 0..N-1 in the queue while the child gets them, one
# q.get() at a time; once the child has all N, the parent answers "done".
import sys
from multiprocessing import Pipe, Process, Queue


def child(queue, conn, parents_end):
    # Only the parent holds its end: if the parent dies, recv() here ends too.
    parents_end.close()
    while True:
        try:
            count = conn.recv()
        except EOFError:
            return
        if count is None:
            return
        total = 0
        for _ in range(count):
            total += queue.get()
        conn.send(total)


if __name__ == "__main__":
    queue = Queue()
    ours, theirs = Pipe()
    worker = Process(target=child, args=(queue, theirs, ours))
    worker.start()
    theirs.close()

    def transfer(count):
        ours.send(count)
        for i in range(count):
            queue.put(i)
        ours.recv()

    transfer(1000)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        transfer(int(line.split()[1]))
        sys.stdout.write("done\n")
        sys.stdout.flush()
    ours.send(None)
    worker.join()
