import t from 'tap';
import { clipOutputSize, parseClipImageProcessor, preprocessClipImage } from '../../models/clip_image_processor.js';

t.test('parseClipImageProcessor fills in CLIPImageProcessor defaults and reads every size form', async (t) => {
  const defaults = parseClipImageProcessor({}, 'p.json');
  t.match(defaults, { doResize: true, shortestEdge: 224, resample: 'bicubic', doCenterCrop: true, cropHeight: 224, cropWidth: 224, doRescale: true, doNormalize: true });
  t.equal(defaults.rescaleFactor, 1 / 255);
  t.same(defaults.imageMean, [0.48145466, 0.4578275, 0.40821073]);
  t.match(parseClipImageProcessor({ size: 96, crop_size: 80, resample: 2, image_mean: 0.5, image_std: 0.5 }, 'p.json'), {
    shortestEdge: 96,
    cropHeight: 80,
    cropWidth: 80,
    resample: 'bilinear',
    imageMean: [0.5, 0.5, 0.5],
  });
  t.match(parseClipImageProcessor({ size: { height: 32, width: 48 }, do_center_crop: false }, 'p.json'), { resizeTo: { height: 32, width: 48 }, doCenterCrop: false });
});

t.test('parseClipImageProcessor names the field that is wrong', async (t) => {
  const cases: [unknown, string][] = [
    [[], 'the file'],
    [{ do_resize: 'yes' }, 'do_resize'],
    [{ size: { shortest_edge: 0 } }, 'size.shortest_edge'],
    [{ size: 'big' }, 'size'],
    [{ crop_size: { height: 2 } }, 'crop_size.width'],
    [{ resample: 5 }, 'resample'],
    [{ rescale_factor: '1/255' }, 'rescale_factor'],
    [{ image_std: [1, 0, 1] }, 'image_std'],
    [{ image_mean: [0.5, 0.5] }, 'image_mean'],
  ];
  for (const [json, field] of cases) {
    t.throws(() => parseClipImageProcessor(json, 'p.json'), { code: 'MEDSYN_ERR_BAD_MODEL', option: field, file: 'p.json' }, field);
  }
});

t.test('clipOutputSize resizes the shortest edge (long side truncated) and crops', async (t) => {
  const noCrop = parseClipImageProcessor({ size: { shortest_edge: 64 }, do_center_crop: false }, 'p.json');
  t.same(clipOutputSize(noCrop, 100, 150), [64, 96]);
  t.same(clipOutputSize(noCrop, 150, 100), [96, 64]);
  t.same(clipOutputSize(noCrop, 3, 7), [64, 149]);
  t.same(clipOutputSize(parseClipImageProcessor({ size: { shortest_edge: 64 }, crop_size: 64 }, 'p.json'), 100, 150), [64, 64]);
  t.same(clipOutputSize(parseClipImageProcessor({ do_resize: false, do_center_crop: false }, 'p.json'), 10, 20), [10, 20]);
});

t.test('preprocessClipImage rescales, normalises, replicates gray into 3 channels and zero-pads a crop larger than the image', async (t) => {
  const config = parseClipImageProcessor(
    { do_resize: false, crop_size: { height: 2, width: 4 }, image_mean: [0.5, 0.25, 0], image_std: [0.5, 0.25, 1], rescale_factor: 0.01 },
    'p.json',
  );
  const values = await preprocessClipImage({ pixels: Uint8Array.of(10, 20, 30, 40), width: 2, height: 2 }, config);
  // Cropping 2 × 2 to 2 × 4: one zero column each side (top-left at floor((2 − 4) / 2) = −1).
  const channel = (c: number) => Array.from(values.subarray(c * 8, (c + 1) * 8), (v) => +v.toFixed(5));
  t.same(channel(0), [-1, -0.8, -0.6, -1, -1, -0.4, -0.2, -1].map((v) => +v.toFixed(5)));
  t.same(channel(1), [-1, -0.6, -0.2, -1, -1, 0.2, 0.6, -1].map((v) => +v.toFixed(5)));
  t.same(channel(2), [0, 0.1, 0.2, 0, 0, 0.3, 0.4, 0]);

  const out = new Float32Array(2 + 3 * 8).fill(7);
  await preprocessClipImage({ pixels: Uint8Array.of(10, 20, 30, 40), width: 2, height: 2 }, config, out, 2);
  t.same(Array.from(out.subarray(0, 2)), [7, 7], 'writes at the offset only');
  t.same(Array.from(out.subarray(2)), Array.from(values));
});

t.test('preprocessClipImage shrinks a large image with an antialiased resize', async (t) => {
  const config = parseClipImageProcessor({ size: { shortest_edge: 4 }, crop_size: 4, do_normalize: false, do_rescale: false }, 'p.json');
  // A one-pixel checkerboard averages to mid-gray when shrunk 16 times with antialiasing.
  const pixels = Uint8Array.from({ length: 64 * 64 }, (_, i) => ((i % 64) + Math.floor(i / 64)) % 2 ? 255 : 0);
  const values = await preprocessClipImage({ pixels, width: 64, height: 64 }, config);
  t.ok(values.every((v) => v > 100 && v < 155), `mid-gray everywhere: ${Array.from(values.subarray(0, 16)).join(', ')}`);
});

t.test('preprocessClipImage refuses a malformed image and a short output array', async (t) => {
  const config = parseClipImageProcessor({ do_resize: false, crop_size: 2 }, 'p.json');
  await t.rejects(preprocessClipImage({ pixels: new Uint8Array(3), width: 2, height: 2 }, config), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'image' });
  await t.rejects(preprocessClipImage({ pixels: new Uint8Array(4), width: 2, height: 2 }, config, new Float32Array(5)), { code: 'MEDSYN_ERR_INVALID_OPTION', option: 'out' });
});
