import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { isMiss, type GeneratedImage, type GenerationRequest } from '../../models/generator.js';
import { createImageFolderGenerator } from '../../models/image_folder_generator.js';
import type { CleanReport } from '../../records.js';

function request(id: string, subjectId: string | undefined, variant = 0): GenerationRequest {
  const report: CleanReport = { id, ...(subjectId ? { subjectId } : {}), source: 'test', sections: {}, sectionUsed: 'impression', prompt: 'x', caption: 'x', labels: {}, attributes: {} };
  return { key: id, report, variant, attempt: 0, seed: 0 };
}

/** A portrait JPEG of one gray level, so the pixels say which file was read. */
function jpeg(level: number): Promise<Buffer> {
  return sharp({ create: { width: 60, height: 80, channels: 3, background: { r: level, g: level, b: level } } }).jpeg({ quality: 95 }).toBuffer();
}

async function tree(t: Test) {
  const dir = t.testdir({
    'mimic-cxr-jpg': {
      files: {
        p10: {
          p10000001: { s50000001: { 'aaa.jpg': await jpeg(40), 'bbb.jpg': await jpeg(200), 'notes.txt': 'x' } },
          p10000002: { s50000002: { 'ccc.jpg': Buffer.from('not a jpeg') } },
        },
      },
    },
  });
  const metadata = join(dir, 'metadata.csv');
  writeFileSync(
    metadata,
    [
      'dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns',
      'bbb,10000001,50000001,CHEST (PA AND LAT),PA,80,60',
      'aaa,10000001,50000001,CHEST (PA AND LAT),LATERAL,80,60',
      'ccc,10000002,50000002,CHEST (PORTABLE AP),AP,80,60',
      'ddd,10000003,50000003,CHEST (PA AND LAT),PA,80,60',
    ].join('\n') + '\n',
  );
  return { root: join(dir, 'mimic-cxr-jpg'), metadata };
}

const level = (image: GeneratedImage) => image.pixels.reduce((sum, value) => sum + value, 0) / image.pixels.length;

t.test('createImageFolderGenerator takes the study folder’s images in name order, scaled and cut to the square', async (t) => {
  const { root } = await tree(t);
  const generator = await createImageFolderGenerator({ images: root, size: 32 });
  t.equal(generator.backend, 'images');
  t.equal(generator.model, 'images:mimic-cxr-jpg');
  const [first, second, third] = await generator.generate([request('s50000001', 'p10000001'), request('s50000001', 'p10000001', 1), request('s50000001', 'p10000001', 2)]);
  t.match(first, { width: 32, height: 32, channels: 1, meta: { sourceImage: join('files', 'p10', 'p10000001', 's50000001', 'aaa.jpg') } });
  t.equal((first as GeneratedImage).pixels.length, 32 * 32);
  t.ok(Math.abs(level(first as GeneratedImage) - 40) < 3, 'variant 0 is aaa.jpg');
  t.ok(Math.abs(level(second as GeneratedImage) - 200) < 3, 'variant 1 is bbb.jpg');
  t.match(third, { miss: { reason: 'missing_image', message: /has 2 images/ } });
  const rgb = await createImageFolderGenerator({ images: join(root, 'files'), size: 16, channels: 3 });
  t.match((await rgb.generate([request('s50000001', 'p10000001')]))[0], { channels: 3, pixels: { length: 16 * 16 * 3 } });
});

t.test('createImageFolderGenerator with metadata keeps the chosen views and finds the folder without a subject id', async (t) => {
  const { root, metadata } = await tree(t);
  const generator = await createImageFolderGenerator({ images: root, metadata, views: ['pa', 'AP'], size: 32 });
  const results = await generator.generate([
    request('s50000001', undefined),
    request('s50000001', undefined, 1),
    request('s50000002', undefined),
    request('s50000003', undefined),
    request('s59999999', undefined),
    request('not-a-study', undefined),
  ]);
  t.match(results[0], { meta: { dicomId: 'bbb', view: 'PA' } });
  t.ok(Math.abs(level(results[0] as GeneratedImage) - 200) < 3, 'the PA image, not the lateral');
  t.match(results[1], { miss: { reason: 'missing_image' } }, 'the lateral view is left out');
  t.match(results[2], { miss: { reason: 'bad_image', message: /ccc\.jpg/ } });
  t.match(results[3], { miss: { reason: 'missing_image', message: /does not exist/ } });
  t.match(results[4], { miss: { reason: 'missing_image', message: /lists no/ } });
  t.match(results[5], { miss: { reason: 'missing_image', message: /not a MIMIC-CXR study id/ } });
  t.ok(results.slice(1).every(isMiss));
});

t.test('createImageFolderGenerator fails early on a bad folder, metadata or options', async (t) => {
  const { root, metadata } = await tree(t);
  await t.rejects(createImageFolderGenerator({ images: join(root, 'nope') }), { code: 'MEDSYN_ERR_NOT_FOUND' });
  await t.rejects(createImageFolderGenerator({ images: metadata }), { code: 'MEDSYN_ERR_NOT_FOUND' });
  await t.rejects(createImageFolderGenerator({ images: root, views: ['PA'] }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'views' });
  await t.rejects(createImageFolderGenerator({ images: root, metadata: join(root, 'missing.csv') }), { code: 'MEDSYN_ERR_NOT_FOUND' });
  const bad = join(root, 'bad.csv');
  writeFileSync(bad, 'a,b\n1,2\n');
  await t.rejects(createImageFolderGenerator({ images: root, metadata: bad }), { code: 'MEDSYN_ERR_MISSING_COLUMN' });
  await t.rejects(createImageFolderGenerator({ images: root, size: 5 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'size' });
  const noSubject = await createImageFolderGenerator({ images: root });
  t.match(await noSubject.generate([request('s50000001', undefined)]), [{ miss: { reason: 'missing_image', message: /no subject id/ } }]);
});
