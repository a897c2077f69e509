import t from 'tap';
import { auroc, macroAuroc, matchRanks, retrievalMetrics, similarityMatrix } from '../../train/retrieval_metrics.js';
import { xorshift32 } from '../../fixtures/_xorshift32.js';


/** Every positive–negative pair: 1 when the positive scores higher, ½ for a tie. */
function bruteAuroc(scores: number[], labels: number[]): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return pairs === 0 ? Number.NaN : wins / pairs;
}

t.test('auroc matches hand-computed values', async (t) => {
  t.equal(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75, 'the scikit-learn example: 3 of 4 pairs ordered');
  t.equal(auroc([1, 2, 3, 4], [0, 0, 1, 1]), 1);
  t.equal(auroc([4, 3, 2, 1], [0, 0, 1, 1]), 0);
  t.equal(auroc([5, 5, 5, 5], [0, 1, 0, 1]), 0.5, 'all tied: one half');
  // Positives 2, 3(tie with a negative); negatives 1, 3: pairs (2>1)=1, (2<3)=0, (3>1)=1, (3=3)=½ → 2.5/4.
  t.equal(auroc([2, 3, 1, 3], [1, 1, 0, 0]), 0.625, 'a tie counts one half');
  t.equal(auroc(Float32Array.of(0.2, 0.9, 0.1, 0.4, 7), [0, 1, -1, 1, Number.NaN]), 1, 'labels other than 0/1 are ignored, with their scores');
  t.ok(Number.isNaN(auroc([1, 2], [1, 1])), 'NaN without negatives');
  t.ok(Number.isNaN(auroc([], [])), 'NaN when empty');
  t.throws(() => auroc([1], [1, 0]), { code: 'MEDSYN_ERR_INVALID_OPTION' });
  t.throws(() => auroc([Number.NaN, 1], [1, 0]), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('auroc equals the brute-force pair count on random data with many ties', async (t) => {
  const random = xorshift32(7);
  for (let trial = 0; trial < 50; trial++) {
    const n = 1 + Math.floor(random() * 60);
    const scores = Array.from({ length: n }, () => Math.floor(random() * 8) / 4);
    const labels = Array.from({ length: n }, () => [1, 0, -1][Math.floor(random() * 3)]!);
    const expected = bruteAuroc(scores, labels);
    const got = auroc(scores, labels);
    if (Number.isNaN(expected)) t.ok(Number.isNaN(got), `trial ${trial}: NaN`);
    else t.ok(Math.abs(got - expected) < 1e-12, `trial ${trial}: ${got} = ${expected}`);
  }
});

t.test('macroAuroc averages over observations with both classes only', async (t) => {
  const result = macroAuroc(
    { edema: [0.1, 0.9, 0.5], cardiomegaly: [1, 2, 3], pneumonia: [0.3, 0.2, 0.1] },
    { edema: [0, 1, 0], cardiomegaly: [1, 1, 1], pneumonia: [1, 0, 0] },
  );
  t.same(result.perObservation, { edema: 1, cardiomegaly: null, pneumonia: 1 });
  t.same(result.counted, ['edema', 'pneumonia']);
  t.equal(result.macro, 1);
  t.equal(macroAuroc({ edema: [1] }, { edema: [1] }).macro, null);
  t.throws(() => macroAuroc({ edema: [1] }, {}), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('retrievalMetrics matches a hand-computed 3 × 3 case both ways', async (t) => {
  // Rows: images; columns: texts.
  const similarity = [
    0.9, 0.1, 0.2, // image 0: own text first → rank 1
    0.8, 0.5, 0.7, // image 1: own text third → rank 3
    0.1, 0.6, 0.6, // image 2: tie with text 1 → pessimistic rank 2
  ];
  t.same(matchRanks(similarity, 3), [1, 3, 2]);
  // Columns: text 0 [0.9, 0.8, 0.1] → 1; text 1 [0.1, 0.5, 0.6] → 2; text 2 [0.2, 0.7, 0.6] → 2.
  t.same(matchRanks(similarity, 3, true), [1, 2, 2]);
  const metrics = retrievalMetrics(similarity, 3);
  t.equal(metrics.count, 3);
  t.same(metrics.imageToText, { r1: 1 / 3, r5: 1, r10: 1, medianRank: 2 });
  t.same(metrics.textToImage, { r1: 1 / 3, r5: 1, r10: 1, medianRank: 2 });
  t.equal(retrievalMetrics([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1], 4).imageToText.medianRank, 2.5, 'even count: mean of the two middle ranks (1, 1, 4, 4)');
  t.throws(() => retrievalMetrics([1, 2, 3], 2), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});

t.test('retrievalMetrics equals a brute-force sort on random matrices', async (t) => {
  const random = xorshift32(11);
  for (let trial = 0; trial < 20; trial++) {
    const n = 1 + Math.floor(random() * 40);
    const similarity = Array.from({ length: n * n }, () => Math.floor(random() * 10));
    const brute = (transpose: boolean): number[] =>
      Array.from({ length: n }, (_, q) => {
        const at = (c: number): number => (transpose ? similarity[c * n + q]! : similarity[q * n + c]!);
        // Sort candidates by score, descending, the match last among equals: its position is the rank.
        const order = Array.from({ length: n }, (_, c) => c).sort((a, b) => at(b) - at(a) || (a === q ? 1 : b === q ? -1 : 0));
        return order.indexOf(q) + 1;
      });
    for (const transpose of [false, true]) {
      const ranks = brute(transpose);
      t.same(matchRanks(similarity, n, transpose), ranks, `trial ${trial} ${transpose ? 'text→image' : 'image→text'}`);
    }
    const metrics = retrievalMetrics(similarity, n);
    const ranks = brute(false);
    t.equal(metrics.imageToText.r5, ranks.filter((r) => r <= 5).length / n);
  }
});

t.test('similarityMatrix holds the dot products, row-major', async (t) => {
  t.same(Array.from(similarityMatrix([[1, 0], [0, 2]], [[3, 4], [1, 1], [0, 1]])), [3, 1, 0, 8, 2, 2]);
  t.throws(() => similarityMatrix([[1, 0]], [[1]]), { code: 'MEDSYN_ERR_INVALID_OPTION' });
});
