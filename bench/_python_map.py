# The Python peer of bench/process_pool_bench.ts: a multiprocessing.Pool of 2
# that maps `inc` over N items with Pool.map's default chunks each time it reads
# "map N" on stdin, and answers "done" on stdout.
import sys
from multiprocessing import Pool


def inc(x):
    return x + 1


if __name__ == "__main__":
    with Pool(2) as pool:
        pool.map(inc, range(1000))
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        items = {}
        for line in sys.stdin:
            count = int(line.split()[1])
            if count not in items:
                items[count] = list(range(count))
            pool.map(inc, items[count])
            sys.stdout.write("done\n")
            sys.stdout.flush()
