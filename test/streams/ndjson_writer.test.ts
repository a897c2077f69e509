import t from 'tap';
import { PassThrough, Writable } from 'node:stream';
import { writeNdjson } from '../../streams/ndjson_writer.js';

async function collect(stream: PassThrough): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk;
  return text;
}

t.test('writeNdjson writes one JSON record a line and counts them', async (t) => {
  const out = new PassThrough();
  const text = collect(out);
  const count = await writeNdjson([{ id: 's1' }, { id: 's2', text: 'a\nb' }], out);
  t.equal(count, 2);
  t.equal(await text, '{"id":"s1"}\n{"id":"s2","text":"a\\nb"}\n');
});

t.test('writeNdjson gathers lines into chunks and waits for a slow reader', async (t) => {
  const writes: number[] = [];
  const slow = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, done) {
      writes.push(chunk.length);
      setTimeout(done, 1);
    },
  });
  let produced = 0;
  async function* records() {
    for (let i = 0; i < 2000; i++) {
      produced++;
      yield { id: `s${i}`, pad: 'x'.repeat(100) };
    }
  }
  const count = await writeNdjson(records(), slow, { chunkSize: 8192 });
  t.equal(count, 2000);
  t.ok(writes.length < 40, `about 30 writes of 8 KiB, not 2000 (${writes.length})`);
  t.equal(produced, 2000);
});

t.test('writeNdjson leaves the output open with end: false', async (t) => {
  const out = new PassThrough();
  await writeNdjson([{ a: 1 }], out, { end: false });
  t.equal(out.writableEnded, false);
  out.end();
});

t.test('writeNdjson turns a failing output into MEDSYN_ERR_WRITE_FAILED', async (t) => {
  const full = new Writable({
    write(_chunk, _encoding, done) {
      done(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
    },
  });
  await t.rejects(writeNdjson([{ a: 1 }], full, { name: 'out.ndjson' }), { code: 'MEDSYN_ERR_WRITE_FAILED', message: /Cannot write out\.ndjson: no space left/ });
});

t.test('writeNdjson passes on an error of the records unchanged', async (t) => {
  async function* failing() {
    yield { a: 1 };
    throw Object.assign(new Error('bad input'), { code: 'MEDSYN_ERR_BAD_CSV' });
  }
  const out = new PassThrough();
  out.resume();
  await t.rejects(writeNdjson(failing(), out), { message: 'bad input' });
});
