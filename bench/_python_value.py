# The Python peer of bench/shared_memory_bench.ts: a long-lived child Process
# that holds a multiprocessing.Value and, for each "value N" read on stdin, does
# N increments under the Value's lock (`with v.get_lock(): v.value += 1`) in the
# child, then answers "done" on stdout.
import sys
from multiprocessing import Pipe, Process, Value


def child(value, conn, parents_end):
    # Only the parent holds its end: if the parent dies, recv() here ends too.
    parents_end.close()
    while True:
        try:
            count = conn.recv()
        except EOFError:
            return
        if count is None:
            return
        for _ in range(count):
            with value.get_lock():
                value.value += 1
        conn.send(count)


if __name__ == "__main__":
    value = Value("i", 0)
    ours, theirs = Pipe()
    worker = Process(target=child, args=(value, theirs, ours))
    worker.start()
    theirs.close()
    ours.send(1000)
    ours.recv()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        ours.send(int(line.split()[1]))
        ours.recv()
        sys.stdout.write("done\n")
        sys.stdout.flush()
    ours.send(None)
    worker.join()
