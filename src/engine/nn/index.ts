export { Module, parameter } from './module.js';
export { Linear, type LinearOptions } from './linear.js';
export { LayerNorm } from './layer-norm.js';
export { Embedding } from './embedding.js';
export { Dropout } from './dropout.js';
