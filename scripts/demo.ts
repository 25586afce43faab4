// `npm start`: a small tour on embedded defaults — tensors, a Conv2d and a
// backward pass. (Replaced by the face demo once FaceModel lands.)
import { manualSeed, memory, nn, randn, tidy, versions } from '../lib';

manualSeed(0);
console.log(`torchface ${versions().torchface} on libtorch ${versions().libtorch}`);
tidy(() => {
  const conv = new nn.Conv2d(3, 16, 5);
  const x = randn([1, 3, 14, 14], { requiresGrad: true });
  const y = conv.forward(x);
  console.log(`Conv2d(3, 16, 5) on 14x14x3 -> [${y.shape}]`);
  const loss = y.square().mean();
  loss.backward();
  console.log(`loss ${loss.item().toFixed(4)}; |dL/dx| = ${x.grad!.norm().item().toFixed(4)}; |dL/dW| = ${conv.weight.grad!.norm().item().toFixed(4)}`);
  conv.dispose();
});
console.log('live tensors after tidy():', memory().tensors);
