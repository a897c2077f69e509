import t from 'tap';
import { splitLines, type Line } from '../../streams/split_lines.js';
import { chunked, collect } from './_chunks.js';

const text = (lines: Line[]): string[] => lines.map((line) => Buffer.from(line.bytes).toString('utf8'));

t.test('splitLines splits LF and CRLF lines the same in any chunk size', async (t) => {
  const input = 'first\r\nsecond\n\nfourth é\r\nlast without newline';
  for (const size of [1, 2, 7, 1000]) {
    const lines = await collect(splitLines(chunked(input, size)));
    t.same(text(lines), ['first', 'second', '', 'fourth é', 'last without newline'], `chunks of ${size}`);
    t.same(
      lines.map((line) => line.number),
      [1, 2, 3, 4, 5],
    );
    t.ok(lines.every((line) => !line.truncated));
  }
});

t.test('splitLines yields no empty line after a final newline, and nothing for no input', async (t) => {
  t.same(text(await collect(splitLines(chunked('a\nb\n', 1)))), ['a', 'b']);
  t.same(text(await collect(splitLines(chunked('a\r\n', 1)))), ['a']);
  t.same(await collect(splitLines(chunked('', 1))), []);
});

t.test('splitLines keeps a lone CR inside a line and drops a CR before LF split across chunks', async (t) => {
  const lines = await collect(splitLines((async function* () {
    yield Buffer.from('a\rb\r');
    yield Buffer.from('\nc');
  })()));
  t.same(text(lines), ['a\rb', 'c']);
  t.equal(lines[0].byteLength, 3);
});

t.test('splitLines cuts a line over maxLineBytes, reports its whole length and resyncs at the next newline', async (t) => {
  const long = 'x'.repeat(100);
  for (const size of [1, 7, 64]) {
    const lines = await collect(splitLines(chunked(`ok\n${long}\r\nafter\n`, size), { maxLineBytes: 10 }));
    t.same(text(lines), ['ok', 'xxxxxxxxxx', 'after'], `chunks of ${size}`);
    t.same(lines.map((line) => [line.number, line.truncated, line.byteLength]), [
      [1, false, 2],
      [2, true, 100],
      [3, false, 5],
    ]);
  }
});

t.test('splitLines takes a line of exactly maxLineBytes with CRLF as whole', async (t) => {
  const lines = await collect(splitLines(chunked('abcd\r\n', 1), { maxLineBytes: 4 }));
  t.same(text(lines), ['abcd']);
  t.equal(lines[0].truncated, false);
});

t.test('splitLines accepts strings and plain Uint8Arrays', async (t) => {
  const lines = await collect(splitLines((async function* () {
    yield 'a\nb';
    yield new Uint8Array([0x63, 0x0a]);
  })()));
  t.same(text(lines), ['a', 'bc']);
});

t.test('splitLines refuses a bad maxLineBytes', async (t) => {
  await t.rejects(collect(splitLines(chunked('a', 1), { maxLineBytes: 0 })), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
