/**
 * Kiln's engine: libtorch tensors, autograd, optimizers and `nn` building blocks for Node.
 *
 * @example
 * import { tidy, randn, AdamW, nn } from 'kiln/engine';
 * const layer = new nn.Linear(4, 2);
 * const opt = new AdamW([{ params: layer.parameters(), lr: 1e-3 }]);
 * tidy(() => { layer.forward(randn([8, 4])).square().mean().backward(); });
 * opt.step(); opt.zeroGrad();
 */
export { Tensor, type Operand, type Reduction } from './tensor.js';
export { DTYPES, isFloatingDType, type DType, type Device } from './dtype.js';
export * from './create.js';
export * from './functional.js';
export { tidy, keep, dispose, scopeDepth } from './scope.js';
export { noGrad, enableGrad, isGradEnabled, autocast } from './grad.js';
export { allocatorSetting, manualSeed, setNumThreads, getNumThreads, setNumInteropThreads, buildInfo, cudaUnavailableReason, liveTensorCount } from './runtime.js';
export { Optimizer, AdamW, SGD, clipGradNorm, type ParamGroup, type AdamWOptions, type SGDOptions } from './optim.js';
export { saveSafetensors, loadSafetensors, type LoadedSafetensors } from './safetensors.js';
export { ProcessGroup, allGatherWithGrad, distributedEnvironment, type ProcessGroupOptions, type TcpStoreOptions, type FileStoreOptions, type AllreduceOp, type DistributedEnvironment } from './dist.js';
export * as nn from './nn/index.js';
