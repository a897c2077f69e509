import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readStudyImages } from '../../streams/mimic_jpg_metadata.js';

const csv = [
  'dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns',
  'd1,10000032,50414267,CHEST (PA AND LAT),PA,3056,2544',
  'd2,10000032,50414267,CHEST (PA AND LAT),LATERAL,3056,2544',
  'd3,10000032,53189527,CHEST (PORTABLE AP),AP,3056,2544',
  'd4,10000033,53189528,CHEST,,3056,2544',
].join('\r\n');

t.test('readStudyImages maps studies to their images, from CSV or gzip, keeping the chosen views', async (t) => {
  const dir = t.testdir({});
  writeFileSync(join(dir, 'meta.csv'), csv);
  writeFileSync(join(dir, 'meta.csv.gz'), gzipSync(csv));
  for (const file of ['meta.csv', 'meta.csv.gz']) {
    const all = await readStudyImages(join(dir, file));
    t.same([...all.keys()], ['s50414267', 's53189527', 's53189528']);
    t.same(all.get('s50414267'), [
      { dicomId: 'd1', subjectId: 'p10000032', view: 'PA' },
      { dicomId: 'd2', subjectId: 'p10000032', view: 'LATERAL' },
    ]);
    const frontal = await readStudyImages(join(dir, file), { views: ['pa', 'AP'] });
    t.same([...frontal.keys()], ['s50414267', 's53189527']);
    t.equal(frontal.get('s50414267')?.length, 1);
  }
});

t.test('readStudyImages names a missing file, missing columns and a damaged gzip', async (t) => {
  const dir = t.testdir({ 'other.csv': 'a,b\n1,2\n', 'bad.csv.gz': 'not gzip at all' });
  await t.rejects(readStudyImages(join(dir, 'none.csv')), { code: 'MEDSYN_ERR_NOT_FOUND' });
  await t.rejects(readStudyImages(join(dir, 'other.csv')), { code: 'MEDSYN_ERR_MISSING_COLUMN', message: /dicom_id, subject_id, study_id, ViewPosition/ });
  await t.rejects(readStudyImages(join(dir, 'bad.csv.gz')), { code: 'MEDSYN_ERR_READ_FAILED' });
});
