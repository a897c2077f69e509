/**
 * medsyn's library API: every stage as a function over async iterables, the
 * readers and sinks, the records and the errors.
 *
 * @example
 * ```ts
 * import { readReports, cleanReports, isReject } from 'medsyn';
 * for await (const item of cleanReports(readReports('mimic-cxr-reports.zip'))) {
 *   if (!isReject(item)) console.log(item.id, item.prompt, item.labels);
 * }
 * ```
 *
 * @module
 */
export * from './errors.js';
export * from './records.js';
export { VERSION } from './version.js';

export { readReports, type ReadReportsOptions } from './streams/read_reports.js';
export { writeNdjson, writeLines, writeOutput, type WriteNdjsonOptions } from './streams/ndjson_writer.js';
export { readCleanNdjson, isCleanReportJson, type CleanNdjsonOptions } from './streams/clean_ndjson.js';
export { openCleanInput, type OpenCleanInputOptions, type OpenedInput } from './streams/open_clean_input.js';
export { readStudyImages, type StudyImage, type StudyImagesOptions } from './streams/mimic_jpg_metadata.js';
export { partitionOf, belongsTo, keepPartition, resolvePartition, type Partition, type ResolvePartitionOptions } from './streams/partition.js';
export { RejectsFile, type RejectRecord } from './streams/rejects_file.js';
export { detectFormat, REPORT_FORMATS, type ReportFormat } from './streams/detect_format.js';
export { sanitizeKey, MAX_KEY_LENGTH, type Sample, type SampleReject, type SampleRejectReason } from './streams/sample.js';
export { encodeSamples, type TarEncoderOptions } from './streams/tar_encoder.js';
export { decodeSamples, type TarDecoderOptions } from './streams/tar_decoder.js';
export { ShardWriter, writeShards, type ShardWriterOptions, type ShardSummary, type ShardWriteResult } from './streams/shard_writer.js';
export { readShards, listShards, type ShardReaderOptions, type ShardReadSummary } from './streams/shard_reader.js';
export {
  readShardManifest,
  parseShardManifest,
  partitionManifestName,
  runSettings,
  runDifferences,
  MANIFEST_FILE,
  SIZES_FILE,
  SHARD_LIST_FILE,
  PARTITION_MANIFEST,
  type ShardManifest,
  type ShardRecord,
  type ShardRunOptions,
  type ShardRunSettings,
} from './streams/shard_manifest.js';
export { mergeShards, type MergeShardsOptions, type MergeSummary } from './streams/shard_merge.js';
export { expandBraces, type ExpandBracesOptions } from './streams/expand_braces.js';
export { shuffleBuffer, type ShuffleBufferOptions } from './streams/shuffle_buffer.js';

export { sectionText, normalizeSectionNames, type SectionedText } from './transforms/section_text.js';
export { extractSections, type ExtractedSections } from './transforms/extract_sections.js';
export { normalizeSection, isCommunication, type NormalizeSectionOptions } from './transforms/normalize_section.js';
export { fitPrompt, wordCountApproximation, type FittedPrompt } from './transforms/fit_prompt.js';
export { labelReport, type LabelResult } from './transforms/chexpert_labels.js';
export { cleanReport, createCleaner, type CleanReportOptions } from './transforms/clean_report.js';
export { cleanReports, type CleanReportsOptions } from './transforms/clean_reports.js';
export { cleanInWorkers, cleanBatchesInWorkers, sliceBatch, type CleanInWorkersOptions, type CleanedBatch } from './transforms/clean_in_workers.js';
export { runClean, formatCleanSummary, type RunCleanOptions, type CleanSummary } from './transforms/run_clean.js';
export { encodeImage, resolveEncodeOptions, IMAGE_FORMATS, type ImageFormat, type EncodeImageOptions } from './transforms/encode_image.js';
export { generateSamples, type GenerateSamplesOptions, type SampleMetadata } from './transforms/generate_samples.js';
export { runGenerate, formatGenerateSummary, type RunGenerateOptions, type GenerateSummary } from './transforms/run_generate.js';
export { imageStats, type GrayImage, type ImageStats } from './transforms/image_stats.js';
export { perceptualHash, imageHashes, hammingDistance, fineDistance, hashToHex, hashFromHex } from './transforms/perceptual_hash.js';
export { DuplicateIndex, type DuplicateIndexOptions, type DuplicateMatch } from './transforms/duplicate_index.js';
export {
  QualityFilter,
  DEFAULT_THRESHOLDS,
  type QualityThresholds,
  type QualityVerdict,
  type QualityReason,
  type ImageScores,
  type AlignmentScorer,
} from './transforms/quality_filter.js';
export { QualityTally, formatQualitySummary, type QualitySummary, type ScoreName } from './transforms/quality_tally.js';
export { ScoreDistribution, type ScoreDistributionOptions, type DistributionSummary } from './transforms/score_distribution.js';
export { summarizeDataset, writeDatasetReport, formatReportSummary, reportStats, type DatasetReportOptions, type DatasetSummary, type ShardTotals } from './transforms/dataset_report.js';
export { runFilter, formatFilterSummary, type RunFilterOptions, type FilterSummary, type FilterReject, type FilterRejectReason } from './transforms/run_filter.js';

export { loadClipTokenizer, clipTokenizerDefinition, type ClipTokenizer, type TokenCounter } from './models/clip_tokenizer.js';
export { isMiss, type Generator, type GenerationRequest, type GeneratedImage, type GenerationMiss } from './models/generator.js';
export { deriveSeed, SeededRandom, MAX_SEED } from './models/seeded_random.js';
export { phantomFindings, type PhantomFindings, type PhantomOpacity, type Device, type Side, type Sides } from './models/phantom_findings.js';
export { renderPhantom, PHANTOM_MODEL } from './models/render_phantom.js';
export { createPhantomGenerator, type PhantomGeneratorOptions } from './models/phantom_generator.js';
export { createImageFolderGenerator, type ImageFolderGeneratorOptions } from './models/image_folder_generator.js';
export { createGenerator, BACKENDS, type Backend, type CreateGeneratorOptions } from './models/create_generator.js';
export { createOnnxSdGenerator, parseDevice, type OnnxSdGeneratorOptions } from './models/onnx_sd_generator.js';
export { createHttpGenerator, type HttpGeneratorOptions } from './models/http_generator.js';
export { SCHEDULER_NAMES, type SchedulerName, type Scheduler, type SchedulerConfig, type SchedulerOptions } from './models/schedulers/scheduler.js';
export { createScheduler, readSchedulerConfig, defaultSchedulerName, SCHEDULER_CLASS_NAMES } from './models/schedulers/create_scheduler.js';
export { loadClipAlignment, ClipAlignment, type ClipAlignmentOptions } from './models/clip_alignment.js';
export { parseClipImageProcessor, preprocessClipImage, clipOutputSize, type ClipImageProcessorConfig, type ResampleFilter } from './models/clip_image_processor.js';

// ── Training engine (train/): graph builder, autodiff onto ONNX, in-graph optimizers, runner, checkpoints ──
export { Graph, Value, shapeSize, formatShape, type GraphOptions, type ParameterOptions, type ConstantOptions, type ToOnnxOptions, type Shape, type ValueKind, type GraphNode, type NodeAttribute } from './train/graph.js';
export * as ops from './train/ops.js';
export * as nn from './train/nn.js';
export * as init from './train/init.js';
export type { Initializer } from './train/init.js';
export { grad, type GradOptions } from './train/grad.js';
export type { DType, FloatDType, HostArray, AnyHostArray, FloatArray } from './train/dtype.js';
export { adamw, type AdamWOptions } from './train/adamw.js';
export { sgd, type SgdOptions } from './train/sgd.js';
export { decayMatrices, type Optimizer, type OptimizerUpdate, type OptimizerUpdateContext } from './train/optimizer.js';
export { warmupCosine, constantSchedule, type Schedule, type WarmupCosineOptions } from './train/schedule.js';
export { TrainStep, trainStep, type TrainStepOptions, type StepResult, type LoadOptions, type SaveOptions } from './train/train_step.js';
export { GraphSession, type GraphSessionOptions } from './train/graph_session.js';
export { openSession, sessionOptions, EXECUTION_DEVICES, type ExecutionDevice, type SessionOptions } from './train/session.js';
export { exportInference, type ExportInferenceOptions } from './train/export_inference.js';
export { encodeSafetensors, decodeSafetensors, type NamedTensor, type SafetensorsContent } from './train/safetensors.js';
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, decodeCheckpoint, CHECKPOINT_FORMAT, type Checkpoint, type CheckpointTensor } from './train/checkpoint.js';
export { auroc, macroAuroc, matchRanks, retrievalMetrics, similarityMatrix, type MacroAuroc, type RetrievalMetrics, type RetrievalScores } from './train/retrieval_metrics.js';
export { FeatureCache, inputDigest, sha256File, type FeatureCacheOptions } from './train/feature_cache.js';
export { loadFrozenEncoders, decodeGrayImage, type FrozenEncoders, type FrozenEncodersOptions, type TowerFolders } from './train/frozen_encoders.js';
export { buildHeads, contrastiveLoss, hostContrastiveLoss, exportHeads, HeadEmbedder, checkHeadShape, HEAD_KINDS, MAX_LOGIT_SCALE, type HeadShape, type Heads } from './train/contrastive_heads.js';
export { trainContrastive, inHeldOutSplit, runCheckpoints, checkpointName, type ContrastiveTrainerOptions, type TrainLogEntry, type TrainSummary, type RunConfig } from './train/contrastive_trainer.js';
export { evaluateRun, readRunConfig, DEFAULT_PROMPTS, type EvaluateRunOptions, type EvalMetrics, type ObservationMetrics, type PromptPair } from './train/evaluate_run.js';
export { linearProbe, type LinearProbeOptions } from './train/linear_probe.js';
export { readChexpertLabelCsv, studyKey } from './train/chexpert_label_csv.js';
