// The raw baseline: a bare Web Worker that answers each message with x + 1.
self.onmessage = (event: MessageEvent<number>) => self.postMessage(event.data + 1);
