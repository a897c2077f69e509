/**
 * Runs a trained run's single-file embedders (`model/image_embedder.onnx`,
 * `model/text_embedder.onnx`) the way a user outside medsyn would — preprocess
 * with the copied `preprocessor_config.json`, tokenise with the copied tokenizer —
 * and measures how far they are from medsyn's own in-process embeddings
 * (frozen towers, then the heads with the last checkpoint's parameters).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clipOutputSize, parseClipImageProcessor, preprocessClipImage } from '../../models/clip_image_processor.js';
import { loadClipTokenizer } from '../../models/clip_tokenizer.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { HeadEmbedder } from '../../train/contrastive_heads.js';
import type { FrozenEncoders } from '../../train/frozen_encoders.js';
import { openSession, ort } from '../../train/session.js';
import type { GrayImage } from '../../transforms/image_stats.js';

export interface EmbedderCheck {
  /** Largest absolute difference of the image embedding. */
  image: number;
  /** Largest absolute difference of the text embedding. */
  text: number;
  /** Length of the joined image and text embeddings. */
  norms: [number, number];
}

const largest = (a: ArrayLike<number>, b: ArrayLike<number>): number => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));

export async function checkEmbedders(run: string, checkpoint: string, encoders: FrozenEncoders, image: GrayImage, caption: string): Promise<EmbedderCheck> {
  const model = join(run, 'model');
  const description = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8')) as { towers: { image: string; text: string } };
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  const parameters = new Map([...(await loadCheckpoint(checkpoint)).parameters].map(([name, tensor]) => [name, tensor.data]));
  const heads = await HeadEmbedder.create(config.heads, parameters, { batch: 1, intraOpThreads: 1 });
  const imageSession = await openSession(join(model, 'image_embedder.onnx'), { intraOpThreads: 1 });
  const textSession = await openSession(join(model, 'text_embedder.onnx'), { intraOpThreads: 1 });
  try {
    const [imageFeatures] = await encoders.embedImages([image]);
    const [textFeatures] = await encoders.embedTexts([caption]);
    const [expectedImage] = await heads.embedImages([imageFeatures!]);
    const [expectedText] = await heads.embedTexts([textFeatures!]);

    const imageDir = join(model, description.towers.image);
    const processor = parseClipImageProcessor(JSON.parse(readFileSync(join(imageDir, 'preprocessor_config.json'), 'utf8')), imageDir);
    const [h, w] = clipOutputSize(processor, image.height, image.width);
    const pixels = new Float32Array(3 * h * w);
    await preprocessClipImage(image, processor, pixels, 0);
    const gotImage = (await imageSession.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, h, w]) }))['image_embeds']!.data as Float32Array;

    const textDir = join(model, description.towers.text);
    const idsMeta = textSession.inputMetadata.find((m) => m.name === 'input_ids');
    const length = idsMeta?.isTensor ? Number(idsMeta.shape[1]) : Number.NaN;
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    let ids: number[];
    let mask: number[];
    if (description.towers.image === description.towers.text) {
      const tokenizer = await loadClipTokenizer(textDir);
      const tokens = tokenizer.encode(caption).slice(0, length);
      ids = tokenizer.encodePadded(caption).slice(0, length);
      mask = ids.map((_, i) => (i < tokens.length ? 1 : 0));
    } else {
      const { AutoTokenizer } = await import('@huggingface/transformers');
      const tokenizer = await AutoTokenizer.from_pretrained(textDir, { local_files_only: true });
      const encoded = tokenizer([caption], { padding: 'max_length', max_length: length, truncation: true }) as Record<string, { data: BigInt64Array }>;
      ids = Array.from(encoded['input_ids']!.data, Number);
      mask = Array.from(encoded['attention_mask']!.data, Number);
    }
    for (const name of textSession.inputNames) {
      const values = name === 'input_ids' ? ids : name === 'attention_mask' ? mask : ids.map(() => 0);
      feeds[name] = new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, length]);
    }
    const gotText = (await textSession.run(feeds))['text_embeds']!.data as Float32Array;
    return {
      image: largest(gotImage, expectedImage!),
      text: largest(gotText, expectedText!),
      norms: [Math.hypot(...gotImage), Math.hypot(...gotText)],
    };
  } finally {
    await heads.release();
    await imageSession.release();
    await textSession.release();
  }
}
