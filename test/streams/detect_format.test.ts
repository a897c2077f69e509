import t from 'tap';
import { detectFormat } from '../../streams/detect_format.js';

const bytes = (text: string): Uint8Array => Buffer.from(text, 'latin1');
const none = new Uint8Array(0);

t.test('detectFormat goes by the extension first, in any case', async (t) => {
  t.equal(detectFormat('mimic-cxr-reports.zip', none), 'zip');
  t.equal(detectFormat('a/b/REPORTS.CSV', bytes('{"id":1}')), 'csv');
  t.equal(detectFormat('x.ndjson', none), 'ndjson');
  t.equal(detectFormat('x.jsonl', none), 'ndjson');
  t.equal(detectFormat('files/p10/p10000032/s50414267.txt', none), 'txt');
});

t.test('detectFormat falls back to the first bytes', async (t) => {
  t.equal(detectFormat('-', bytes('PK\x03\x04rest')), 'zip');
  t.equal(detectFormat('-', bytes('PK\x05\x06')), 'zip', 'an empty archive');
  t.equal(detectFormat('-', bytes('{"id":"s1"}')), 'ndjson');
  t.equal(detectFormat('-', bytes('\xef\xbb\xbf \r\n\t{"id":"s1"}')), 'ndjson', 'after a BOM and white space');
  t.equal(detectFormat('reports.dat', bytes('study,impression\n')), 'csv');
  t.equal(detectFormat('-', bytes('\xef\xbb\xbfid,text\n')), 'csv');
  t.equal(detectFormat('.hidden', bytes('id,text')), 'csv', 'a dot file has no extension');
  t.equal(detectFormat('dir.zip/notes', bytes('id,text')), 'csv', 'a dot in a folder name is no extension');
});

t.test('detectFormat refuses compressed and binary input with a hint', async (t) => {
  t.throws(() => detectFormat('reports.csv.gz', bytes('\x1f\x8b\x08\x00')), {
    code: 'MEDSYN_ERR_UNKNOWN_FORMAT',
    message: /gzip.*gunzip.*--format/,
  });
  t.throws(() => detectFormat('-', bytes('BZh91AY')), { code: 'MEDSYN_ERR_UNKNOWN_FORMAT', message: /stdin.*bzip2/ });
  t.throws(() => detectFormat('-', bytes('ab\x00cd')), { code: 'MEDSYN_ERR_UNKNOWN_FORMAT', message: /NUL/ });
  t.throws(() => detectFormat('reports.json', bytes('  [{"id":"s1"}]')), { code: 'MEDSYN_ERR_UNKNOWN_FORMAT', message: /jq/ });
});
