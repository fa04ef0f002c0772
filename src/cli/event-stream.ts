// Reads a text/event-stream body into frames, as the EventSource spec parses
// them (fields id, event, data; comment lines ignored).

export interface SseFrame {
  id?: string;
  event: string;
  data: string;
}

export async function* sseFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<SseFrame> {
  const decoder = new TextDecoder();
  let buffer = '';
  let frame: { id?: string; event?: string; data?: string[] } = {};
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      // A CR at the end may be the first half of a CRLF still in flight.
      if (nl === buffer.length - 1 && buffer.endsWith('\r')) break;
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (frame.data !== undefined) yield { id: frame.id, event: frame.event ?? 'message', data: frame.data.join('\n') };
        frame = {};
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') frame.id = value;
      else if (field === 'event') frame.event = value;
      else if (field === 'data') (frame.data ??= []).push(value);
    }
  }
}
