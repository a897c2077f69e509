import t from 'tap';
import { fitPrompt, wordCountApproximation } from '../../transforms/fit_prompt.js';

t.test('wordCountApproximation counts BOS, EOS, words by length, digits and punctuation', async (t) => {
  const counter = wordCountApproximation();
  t.equal(counter.maxTokens, 77);
  t.equal(counter.countTokens(''), 2);
  t.equal(counter.countTokens('Small left effusion.'), 7);
  t.equal(counter.countTokens('pneumothorax'), 5, '12 letters: 1 + ceil(5/4)');
  t.equal(counter.countTokens('1.5 cm'), 2 + 3 + 1, 'each digit is its own piece');
});

t.test('fitPrompt keeps text that fits as it is', async (t) => {
  t.same(fitPrompt('No acute process.', wordCountApproximation()), { prompt: 'No acute process.', tokens: 6, truncated: false });
});

t.test('fitPrompt cuts at the last sentence boundary that fits', async (t) => {
  const fitted = fitPrompt('Small left effusion. No pneumothorax. Stable cardiomegaly.', wordCountApproximation(13));
  t.same(fitted, { prompt: 'Small left effusion. No pneumothorax.', tokens: 12, truncated: true });
});

t.test('fitPrompt cuts a too-long first sentence at a word boundary', async (t) => {
  const fitted = fitPrompt('Small left effusion with adjacent atelectasis and mild edema.', wordCountApproximation(8));
  t.equal(fitted.prompt, 'Small left effusion with', 'BOS + 1 + 1 + 2 + 1 + EOS = 7 fits, adding atelectasis (3) does not');
  t.ok(fitted.tokens <= 8);
  t.ok(fitted.truncated);
});

t.test('fitPrompt never returns more tokens than the limit on long captions', async (t) => {
  const counter = wordCountApproximation();
  const caption = Array.from({ length: 40 }, (_, i) => `Finding number ${i} is stable.`).join(' ');
  const fitted = fitPrompt(caption, counter);
  t.ok(fitted.tokens <= 77);
  t.equal(fitted.tokens, counter.countTokens(fitted.prompt));
  t.match(fitted.prompt, /stable\.$/);
});
