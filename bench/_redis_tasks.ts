// The task the Redis bench runs on its workers, by reference.
export function inc(x: number): number {
  return x + 1;
}
