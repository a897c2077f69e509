import t from 'tap';
import sharp from 'sharp';
import { encodeImage, resolveEncodeOptions } from '../../transforms/encode_image.js';

const pixels = Uint8Array.from({ length: 32 * 24 }, (_, i) => (i * 7) % 256);
const image = { pixels, width: 32, height: 24, channels: 1 as const };

t.test('encodeImage writes PNG, JPEG and WebP that decode to the stated size, the same bytes every time', async (t) => {
  const png = await encodeImage(image);
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  t.same(Buffer.from(await encodeImage(image)), Buffer.from(png));
  t.equal(png[25], 0, 'PNG colour type 0: grayscale, not RGB');
  t.match(await sharp(png).metadata(), { channels: 1 });
  const decoded = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  t.match(decoded.info, { width: 32, height: 24, channels: 1 });
  t.same(Buffer.from(decoded.data), Buffer.from(pixels), 'PNG is lossless');
  const jpg = await encodeImage(image, { imageFormat: 'jpg', quality: 80 });
  t.same([...jpg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  t.ok((await encodeImage(image, { imageFormat: 'jpg', quality: 20 })).length < jpg.length, 'quality matters');
  const webp = await encodeImage(image, { imageFormat: 'webp' });
  t.equal(webp.subarray(8, 12).toString('latin1'), 'WEBP');
  t.ok((await encodeImage(image, { compression: 0 })).length > png.length, 'compression 0 stores');
  const rgb = await encodeImage({ pixels: new Uint8Array(4 * 4 * 3).fill(9), width: 4, height: 4, channels: 3 });
  t.match((await sharp(rgb).metadata()), { channels: 3, width: 4 });
});

t.test('resolveEncodeOptions fills in defaults and names a bad option', async (t) => {
  t.same(resolveEncodeOptions(), { imageFormat: 'png', quality: 90, compression: 6 });
  t.throws(() => resolveEncodeOptions({ imageFormat: 'gif' as 'png' }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'imageFormat' });
  t.throws(() => resolveEncodeOptions({ quality: 0 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'quality' });
  t.throws(() => resolveEncodeOptions({ compression: 10 }), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'compression' });
});
