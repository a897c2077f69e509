import { join } from 'node:path';
import t from 'tap';
import { readTxtReport } from '../../streams/txt_report.js';
import { collect } from './_chunks.js';

t.test('readTxtReport takes the id from the file name and the subject from a patient folder', async (t) => {
  const dir = t.testdir({ p10000032: { 's50414267.txt': '\ufeff FINAL REPORT\r\n' }, 'report-7.txt': 'plain' });
  const path = join(dir, 'p10000032/s50414267.txt');
  t.same(await collect(readTxtReport(path)), [{ id: 's50414267', subjectId: 'p10000032', source: path, text: ' FINAL REPORT\r\n' }]);
  t.same(await collect(readTxtReport(join(dir, 'report-7.txt'))), [{ id: 'report-7', source: join(dir, 'report-7.txt'), text: 'plain' }]);
});

t.test('readTxtReport rejects a file too long or not UTF-8', async (t) => {
  const dir = t.testdir({ 's1.txt': 'x'.repeat(101), 's2.txt': Buffer.from([0xc3, 0x28]) });
  t.match(await collect(readTxtReport(join(dir, 's1.txt'), { maxReportBytes: 100 })), [{ id: 's1', reason: 'too_long' }]);
  t.match(await collect(readTxtReport(join(dir, 's2.txt'))), [{ id: 's2', reason: 'not_utf8', message: /byte 0/ }]);
});

t.test('readTxtReport throws MEDSYN_ERR_NOT_FOUND for a missing file', async (t) => {
  await t.rejects(collect(readTxtReport(join(t.testdir({}), 's404.txt'))), { code: 'MEDSYN_ERR_NOT_FOUND', message: /s404\.txt/ });
  await t.rejects(collect(readTxtReport('x.txt', { maxReportBytes: -1 })), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'maxReportBytes' });
});
