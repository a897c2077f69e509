import t from 'tap';
import { phantomFindings } from '../../models/phantom_findings.js';

const report = (labels: object, caption: string, attributes: object = {}) => ({ labels, attributes, caption }) as Parameters<typeof phantomFindings>[0];

t.test('phantomFindings draws nothing for a normal report', async (t) => {
  t.same(phantomFindings(report({ noFinding: 1, pleuralEffusion: 0, pneumothorax: 0 }, 'No effusion or pneumothorax.')), {
    cardiothoracicRatio: 0.45,
    mediastinumScale: 1,
    opacities: [],
    edema: 0,
    devices: [],
  });
});

t.test('phantomFindings takes sides and sizes from the attributes, half strength for uncertain findings', async (t) => {
  const findings = phantomFindings(
    report({ pleuralEffusion: 1, pneumothorax: -1, cardiomegaly: 1 }, 'Large left effusion. Possible small right pneumothorax. Cardiomegaly.', {
      pleuralEffusion: { laterality: 'left', size: 'large' },
      pneumothorax: { laterality: 'right', size: 'small' },
    }),
  );
  t.same(findings.effusion, { sides: ['left'], height: 0.45, strength: 1 });
  t.same(findings.pneumothorax, { sides: ['right'], gap: 0.018, strength: 0.5 });
  t.equal(findings.cardiothoracicRatio, 0.62);
  t.equal(phantomFindings(report({ cardiomegaly: -1 }, 'Possible cardiomegaly.')).cardiothoracicRatio, 0.53);
  t.same(phantomFindings(report({ pleuralEffusion: 1 }, 'Bilateral pleural effusions.')).effusion?.sides, ['left', 'right']);
  t.equal(phantomFindings(report({ pleuralEffusion: 1 }, 'Pleural effusion.')).effusion?.sides, undefined, 'the seed picks an unstated side');
  t.same(phantomFindings(report({ pleuralEffusion: -1 }, 'Possible effusion.')).effusion, { sides: undefined, height: 0.12, strength: 0.5 });
});

t.test('phantomFindings draws opacities, edema, lesions and the devices the caption names', async (t) => {
  const findings = phantomFindings(
    report(
      { consolidation: 1, edema: 1, lungLesion: 1, atelectasis: -1, supportDevices: 1, fracture: 1, pleuralOther: 1 },
      'Right lower lobe consolidation. Pulmonary edema. Left upper lobe mass. Bibasilar atelectasis. Endotracheal tube and pacemaker in place. Left rib fracture. Right pleural thickening.',
      { consolidation: { laterality: 'right', size: 'large' } },
    ),
  );
  t.match(findings.opacities, [
    { kind: 'consolidation', sides: ['right'], radius: 0.08 },
    { kind: 'atelectasis', sides: ['left', 'right'], strength: 0.13 },
  ]);
  t.equal(findings.edema, 0.2);
  t.same(findings.lesion, { count: 1, mass: true, strength: 1 });
  t.same(findings.devices, ['endotracheal_tube', 'pacemaker']);
  t.same(findings.pleuralThickening, { sides: ['right'], strength: 1 });
  t.same(findings.fracture, { strength: 1 });
  t.same(phantomFindings(report({ supportDevices: 1 }, 'Lines and tubes unchanged.')).devices, ['central_line'], 'a device the words do not name is a line');
  t.same(phantomFindings(report({ lungLesion: 1 }, 'Multiple pulmonary nodules.')).lesion, { count: 3, mass: false, strength: 1 });
  t.same(phantomFindings(report({ enlargedCardiomediastinum: 1 }, 'Widened mediastinum.')).mediastinumScale, 1.7);
});
