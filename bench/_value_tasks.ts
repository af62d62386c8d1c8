import type { Value } from "../mod.ts";

export async function addMany(value: Value<"int32">, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await value.add(1);
}
