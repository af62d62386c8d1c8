// The raw baseline: a bare Web Worker that answers each message with x + 1.
const scope = self as unknown as {
  onmessage: (event: MessageEvent<number>) => void;
  postMessage(message: number): void;
};
scope.onmessage = (event) => scope.postMessage(event.data + 1);
