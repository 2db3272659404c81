// web/sse.js, the dashboard's Server-Sent Events parser, under node's test runner: every way a stream can be cut
// into reads gives the same events, and no input makes it throw but one line beyond its bound.
//   node --test tests/dashboard/sse.test.mjs        (no browser needed; tests/dashboard/run runs it too)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

// web/ has no package.json to call its files modules, so the source is imported as one.
const source = fs.readFileSync(new URL('../../web/sse.js', import.meta.url), 'utf8');
const { SseParser, MAX_PENDING_CHARS } = await import(`data:text/javascript,${encodeURIComponent(source)}`);

// What the server sends (docs/events.md), with what a parser must also take: CRLF, multi-line data, a field
// without a colon, an unknown field, an event with no data, and non-ASCII text.
const STREAM = [
  'retry: 2000\n', 'id: 41\n', ': pkgcast revision 41\n', '\n',
  'id: 42\n', 'data: {"__REVISION":42,"Name":"caf\u00e9 \u2603"}\n', '\n',
  ': heartbeat\n', '\n',
  'id: 43\r\n', 'data: {"a":\r\n', 'data: 1}\r\n', '\r\n',
  'event: ping\n', 'id: 44\n', '\n',
  'unknown: x\n', 'data\n', 'data:  two spaces\n', '\n',
  'event: error\n', 'data: {"error":"WBEM_E_SHUTTING_DOWN"}\n', '\n',
].join('');
const EXPECTED = [
  { kind: 'message', id: '42', data: '{"__REVISION":42,"Name":"caf\u00e9 \u2603"}' },
  { kind: 'message', id: '43', data: '{"a":\n1}' },
  { kind: 'message', id: '44', data: '\n two spaces' },
  { kind: 'error', id: '44', data: '{"error":"WBEM_E_SHUTTING_DOWN"}' },
];

function parseInPieces(text, sizes) {
  const parser = new SseParser();
  const events = [];
  let at = 0;
  for (let i = 0; at < text.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    events.push(...parser.push(text.slice(at, at + n)));
    at += n;
  }
  return events;
}

// A small seeded generator, so a failure repeats.
function rng(seed) {
  let x = seed >>> 0;
  return () => { x = (x * 1664525 + 1013904223) >>> 0; return x / 2 ** 32; };
}

test('the whole stream at once', () => {
  assert.deepEqual(new SseParser().push(STREAM), EXPECTED);
});

test('every cut into reads gives the same events', () => {
  for (let size = 1; size <= 12; size++) {
    assert.deepEqual(parseInPieces(STREAM, [size]), EXPECTED, `reads of ${size}`);
  }
  const next = rng(7);
  for (let round = 0; round < 500; round++) {
    const sizes = Array.from({ length: 20 }, () => 1 + Math.floor(next() * 40));
    assert.deepEqual(parseInPieces(STREAM, sizes), EXPECTED, `reads of ${sizes}`);
  }
});

test('bytes cut inside a character reach the parser whole through TextDecoderStream', async () => {
  const bytes = new TextEncoder().encode(STREAM);
  const next = rng(11);
  for (let round = 0; round < 50; round++) {
    const pieces = [];
    for (let at = 0; at < bytes.length;) {
      const n = 1 + Math.floor(next() * 7);
      pieces.push(bytes.slice(at, at + n));
      at += n;
    }
    const body = new ReadableStream({ start(c) { for (const p of pieces) c.enqueue(p); c.close(); } });
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    const events = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      events.push(...parser.push(value));
    }
    assert.deepEqual(events, EXPECTED);
  }
});

test('random input never throws, and a line beyond the bound does', () => {
  const next = rng(3);
  const alphabet = 'data:id event\r\n: {}"x\u00e9';
  for (let round = 0; round < 2000; round++) {
    const parser = new SseParser();
    let text = '';
    for (let i = 0; i < 200; i++) text += alphabet[Math.floor(next() * alphabet.length)];
    parser.push(text);
  }
  const parser = new SseParser();
  parser.push('data: ' + 'x'.repeat(MAX_PENDING_CHARS - 10));
  assert.throws(() => parser.push('x'.repeat(100)), /longer than/);
});
