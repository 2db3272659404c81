// Server-Sent Events framing, the part of the HTML standard a pkgcast event stream uses (docs/events.md): lines
// ended by LF or CRLF; `data:` lines joined by LF; `id:` and `event:`; comments (`:`) and unknown fields ignored; a
// blank line ends an event, which is dispatched only when it has data. The id persists from event to event.
//
// Text goes in as it arrives (already decoded: a TextDecoderStream keeps a character split across reads whole), in
// pieces of any size; complete events come out. Kept apart from the page so that node's test runner checks it.

// A line longer than this (an event the page could never hold) ends the stream with an error.
export const MAX_PENDING_CHARS = 16 * 1024 * 1024;

export class SseParser {
  constructor() {
    this.pending = '';  // an incomplete last line
    this.data = [];
    this.kind = '';
    this.id = null;
  }

  // Returns the events `text` completes: [{ kind, id, data }], kind 'message' unless an `event:` line said
  // otherwise.
  push(text) {
    const buffer = this.pending + text;
    const events = [];
    let start = 0;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n', start)) {
      let line = buffer.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (this.data.length) events.push({ kind: this.kind || 'message', id: this.id, data: this.data.join('\n') });
        this.data = [];
        this.kind = '';
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') this.data.push(value);
      else if (field === 'id') this.id = value;
      else if (field === 'event') this.kind = value;
    }
    this.pending = buffer.slice(start);
    if (this.pending.length > MAX_PENDING_CHARS) {
      throw new Error(`an event stream line longer than ${MAX_PENDING_CHARS} characters`);
    }
    return events;
  }
}
