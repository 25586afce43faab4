// The costs of neural style transfer (Gatys, Ecker & Bethge 2015), exactly as
// issue #5 defines them. Activations are N x C x H x W (or C x H x W) tensors
// of one hidden layer; every function returns a scalar tensor that autograd can
// differentiate.
//
//   J_content(C, G)   = 1/2 * || a(C) - a(G) ||^2
//   Gram:  G_kk'      = sum_i sum_j a_ijk a_ijk'                (n_C x n_C)
//   J_style[l](S, G)  = 1 / (2 n_H n_W n_C)^2 * sum_k sum_k' (G(S)_kk' - G(G)_kk')^2
//   J_style           = sum_l lambda_l J_style[l]
//   J(G)              = alpha J_content + beta J_style  (+ tvWeight * TV(G))
import { invalid } from '../core/errors';
import * as F from '../ops';
import { Tensor, tidy } from '../core';

function asNchw(a: Tensor, name: string): { n: number; c: number; h: number; w: number } {
  if (!(a instanceof Tensor)) invalid(name, 'a Tensor', a);
  const s = a.shape;
  if (s.length === 3) return { n: 1, c: s[0], h: s[1], w: s[2] };
  if (s.length === 4) return { n: s[0], c: s[1], h: s[2], w: s[3] };
  return invalid(name, 'an activation of shape C x H x W or N x C x H x W', `shape [${s}]`);
}

function sameShape(a: Tensor, b: Tensor, names: string): void {
  if (a.shape.join('x') !== b.shape.join('x')) invalid(names, 'activations of the same shape', `shapes [${a.shape}] and [${b.shape}]`);
}

/**
 * Gram matrix of a layer's activation: for C x H x W input, the n_C x n_C matrix
 * G_kk' = sum over positions of a_k * a_k'; for N x C x H x W, N x n_C x n_C.
 */
export function gramMatrix(a: Tensor): Tensor {
  const { n, c, h, w } = asNchw(a, 'activation');
  return tidy(() => {
    if (a.ndim === 3 || n === 1) {
      // one image: a plain matrix product (faster than bmm on CPU)
      const m = a.reshape([c, h * w]);
      const g = F.mm(m, m.t());
      return a.ndim === 3 ? g : g.unsqueeze(0);
    }
    const m = a.reshape([n, c, h * w]);
    return F.bmm(m, m.transpose(1, 2));
  });
}

/** J_content(C, G) = 1/2 * ||a(C) - a(G)||^2 (summed over every element). */
export function contentCost(aC: Tensor, aG: Tensor): Tensor {
  asNchw(aC, 'aC');
  asNchw(aG, 'aG');
  sameShape(aC, aG, 'aC, aG');
  return tidy(() => F.sum(F.square(F.sub(aC, aG))).mul(0.5));
}

/** The normaliser of J_style[l]: 1 / (2 n_H n_W n_C)^2. */
export function styleNormalizer(shape: number[]): number {
  const [c, h, w] = shape.length === 4 ? shape.slice(1) : shape;
  return 1 / (2 * h * w * c) ** 2;
}

/**
 * J_style[l](S, G) = 1/(2 n_H n_W n_C)^2 * sum_kk' (G(S)_kk' - G(G)_kk')^2.
 * aS may be the style activation or, to save recomputing it every step, its
 * Gram matrix ({ gram }); n_H, n_W, n_C are those of aG.
 */
export function layerStyleCost(aS: Tensor | { gram: Tensor }, aG: Tensor): Tensor {
  asNchw(aG, 'aG');
  return tidy(() => {
    let gS: Tensor;
    if (aS instanceof Tensor) {
      asNchw(aS, 'aS');
      if (aS.ndim !== aG.ndim || aS.shape[aS.ndim - 3] !== aG.shape[aG.ndim - 3]) invalid('aS, aG', 'activations with the same number of channels', `shapes [${aS.shape}] and [${aG.shape}]`);
      gS = gramMatrix(aS);
    } else if (aS && aS.gram instanceof Tensor) gS = aS.gram;
    else return invalid('aS', 'a Tensor or { gram: Tensor }', aS);
    const gG = gramMatrix(aG);
    sameShape(gS, gG, 'gram(aS), gram(aG)');
    return F.sum(F.square(F.sub(gS, gG))).mul(styleNormalizer(aG.shape));
  });
}

/**
 * J_style = sum_l lambda_l J_style[l](S, G). `styleActs` maps layer names to
 * activations of S (or { gram }), `genActs` to activations of G, `lambdas` to
 * weights (every layer named in lambdas must be in both maps).
 */
export function styleCost(
  styleActs: Map<string, Tensor | { gram: Tensor }> | Record<string, Tensor | { gram: Tensor }>,
  genActs: Map<string, Tensor> | Record<string, Tensor>,
  lambdas: Record<string, number>,
): Tensor {
  const s = styleActs instanceof Map ? styleActs : new Map(Object.entries(styleActs));
  const g = genActs instanceof Map ? genActs : new Map(Object.entries(genActs));
  const names = Object.keys(lambdas ?? {});
  if (names.length === 0) invalid('lambdas', 'at least one layer weight', lambdas);
  return tidy(() => {
    let total: Tensor | null = null;
    for (const name of names) {
      const lambda = lambdas[name];
      if (typeof lambda !== 'number' || !Number.isFinite(lambda)) invalid(`lambdas.${name}`, 'a finite number', lambda);
      const aS = s.get(name);
      const aG = g.get(name);
      if (!aS) invalid('styleActs', `an activation for layer '${name}'`, undefined);
      if (!aG) invalid('genActs', `an activation for layer '${name}'`, undefined);
      const term = layerStyleCost(aS, aG).mul(lambda);
      total = total ? F.add(total, term) : term;
    }
    return total!;
  });
}

/**
 * Total variation of an image N x C x H x W: sum of squared differences
 * between vertical and horizontal neighbours (a smoothness prior).
 */
export function totalVariation(x: Tensor): Tensor {
  if (!(x instanceof Tensor) || x.ndim !== 4) invalid('x', 'an N x C x H x W tensor', x instanceof Tensor ? `shape [${x.shape}]` : x);
  return tidy(() => {
    const [, , h, w] = x.shape;
    const dy = F.sub(x.slice(2, 1, h), x.slice(2, 0, h - 1));
    const dx = F.sub(x.slice(3, 1, w), x.slice(3, 0, w - 1));
    return F.add(F.sum(F.square(dy)), F.sum(F.square(dx)));
  });
}

/** J(G) = alpha J_content + beta J_style (+ tvWeight * tv when given). Numbers or scalar tensors. */
export function totalCost(jContent: Tensor, jStyle: Tensor, alpha = 10, beta = 40, tv?: { cost: Tensor; weight: number }): Tensor {
  for (const [n, v] of [['alpha', alpha], ['beta', beta]] as const) if (typeof v !== 'number' || !Number.isFinite(v)) invalid(n, 'a finite number', v);
  return tidy(() => {
    let j = F.add(jContent.mul(alpha), jStyle.mul(beta));
    if (tv) j = F.add(j, tv.cost.mul(tv.weight));
    return j;
  });
}
