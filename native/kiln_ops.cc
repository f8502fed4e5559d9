// Kiln's libtorch shim: tensor ops. Each function converts its arguments, makes one ATen
// call and wraps the result; argument order follows ATen's signature. Conventions in kiln.h.
#include "kiln.h"

namespace kiln {

#define T(i) TensorArg(info, i)
#define ENV info.Env()

// ---- broadcasting binary ops: kt_<op>(tensor, tensor) and kt_<op>_scalar(tensor, number) ----
#define KILN_BINARY(name, call)                                                                  \
  KILN_FN(kt_##name) { return Wrap(ENV, call(T(0), T(1))); }                                     \
  KILN_FN(kt_##name##_scalar) { return Wrap(ENV, call(T(0), ScalarArg(info, 1))); }
KILN_BINARY(add, torch::add)
KILN_BINARY(sub, torch::sub)
KILN_BINARY(mul, torch::mul)
KILN_BINARY(div, torch::div)
KILN_BINARY(pow, torch::pow)
KILN_BINARY(eq, torch::eq)
KILN_BINARY(ne, torch::ne)
KILN_BINARY(lt, torch::lt)
KILN_BINARY(le, torch::le)
KILN_BINARY(gt, torch::gt)
KILN_BINARY(ge, torch::ge)
KILN_BINARY(remainder, torch::remainder)
#undef KILN_BINARY
// kt_rsub(t, scalar): scalar - t
KILN_FN(kt_rsub) { return Wrap(ENV, torch::rsub(T(0), ScalarArg(info, 1))); }
KILN_FN(kt_maximum) { return Wrap(ENV, torch::maximum(T(0), T(1))); }
KILN_FN(kt_minimum) { return Wrap(ENV, torch::minimum(T(0), T(1))); }
KILN_FN(kt_logical_and) { return Wrap(ENV, torch::logical_and(T(0), T(1))); }
KILN_FN(kt_logical_or) { return Wrap(ENV, torch::logical_or(T(0), T(1))); }
KILN_FN(kt_logical_not) { return Wrap(ENV, torch::logical_not(T(0))); }

// ---- unary element-wise ops ----
#define KILN_UNARY(name) \
  KILN_FN(kt_##name) { return Wrap(ENV, torch::name(T(0))); }
KILN_UNARY(neg)
KILN_UNARY(abs)
KILN_UNARY(exp)
KILN_UNARY(log)
KILN_UNARY(log1p)
KILN_UNARY(sqrt)
KILN_UNARY(rsqrt)
KILN_UNARY(square)
KILN_UNARY(tanh)
KILN_UNARY(erf)
KILN_UNARY(relu)
KILN_UNARY(sigmoid)
KILN_UNARY(sin)
KILN_UNARY(cos)
KILN_UNARY(sign)
KILN_UNARY(isnan)
KILN_UNARY(isfinite)
#undef KILN_UNARY
// kt_gelu(t, approximate): approximate is "none" (erf form) or "tanh"
KILN_FN(kt_gelu) { return Wrap(ENV, torch::gelu(T(0), StringArg(info, 1))); }
// kt_clamp(t, min?, max?)
KILN_FN(kt_clamp) {
  c10::optional<torch::Scalar> lo, hi;
  if (!IsMissing(info, 1)) lo = ScalarArg(info, 1);
  if (!IsMissing(info, 2)) hi = ScalarArg(info, 2);
  return Wrap(ENV, torch::clamp(T(0), lo, hi));
}

// ---- linear algebra ----
KILN_FN(kt_matmul) { return Wrap(ENV, torch::matmul(T(0), T(1))); }
KILN_FN(kt_bmm) { return Wrap(ENV, torch::bmm(T(0), T(1))); }
// kt_linear(x, weight (out, in), bias?) = x weightᵀ + bias
KILN_FN(kt_linear) { return Wrap(ENV, torch::linear(T(0), T(1), OptTensorArg(info, 2))); }

// ---- normalisation and activations over a dimension ----
KILN_FN(kt_softmax) { return Wrap(ENV, torch::softmax(T(0), IntArg(info, 1))); }
KILN_FN(kt_log_softmax) { return Wrap(ENV, torch::log_softmax(T(0), IntArg(info, 1))); }
// kt_layer_norm(x, normalizedShape, weight?, bias?, eps)
KILN_FN(kt_layer_norm) {
  return Wrap(ENV, torch::layer_norm(T(0), IntListArg(info, 1), OptTensorArg(info, 2), OptTensorArg(info, 3), DoubleArg(info, 4)));
}
// kt_normalize(x, p, dim, eps) = x / max(‖x‖_p, eps) along dim, as torch.nn.functional.normalize
KILN_FN(kt_normalize) {
  namespace F = torch::nn::functional;
  return Wrap(ENV, F::normalize(T(0), F::NormalizeFuncOptions().p(DoubleArg(info, 1)).dim(IntArg(info, 2)).eps(DoubleArg(info, 3))));
}
// kt_embedding(weight, indices, paddingIdx): rows of weight; paddingIdx -1 means none
KILN_FN(kt_embedding) { return Wrap(ENV, torch::embedding(T(0), T(1), IntArg(info, 2))); }
// kt_dropout(x, p, train)
KILN_FN(kt_dropout) { return Wrap(ENV, torch::dropout(T(0), DoubleArg(info, 1), BoolArg(info, 2))); }

// ---- shape and indexing ----
KILN_FN(kt_reshape) { return Wrap(ENV, T(0).reshape(IntListArg(info, 1))); }
KILN_FN(kt_view) { return Wrap(ENV, T(0).view(IntListArg(info, 1))); }
KILN_FN(kt_transpose) { return Wrap(ENV, T(0).transpose(IntArg(info, 1), IntArg(info, 2))); }
KILN_FN(kt_permute) { return Wrap(ENV, T(0).permute(IntListArg(info, 1))); }
KILN_FN(kt_unsqueeze) { return Wrap(ENV, T(0).unsqueeze(IntArg(info, 1))); }
KILN_FN(kt_squeeze) {
  if (IsMissing(info, 1)) return Wrap(ENV, T(0).squeeze());
  return Wrap(ENV, T(0).squeeze(IntArg(info, 1)));
}
KILN_FN(kt_expand) { return Wrap(ENV, T(0).expand(IntListArg(info, 1))); }
KILN_FN(kt_flatten) { return Wrap(ENV, T(0).flatten(IntArg(info, 1), IntArg(info, 2))); }
KILN_FN(kt_cat) { return Wrap(ENV, torch::cat(TensorListArg(info, 0), IntArg(info, 1))); }
KILN_FN(kt_stack) { return Wrap(ENV, torch::stack(TensorListArg(info, 0), IntArg(info, 1))); }
// kt_slice(t, dim, start, end, step); end may exceed the size, as in Python slicing
KILN_FN(kt_slice) { return Wrap(ENV, T(0).slice(IntArg(info, 1), IntArg(info, 2), IntArg(info, 3), IntArg(info, 4))); }
KILN_FN(kt_narrow) { return Wrap(ENV, T(0).narrow(IntArg(info, 1), IntArg(info, 2), IntArg(info, 3))); }
KILN_FN(kt_select) { return Wrap(ENV, T(0).select(IntArg(info, 1), IntArg(info, 2))); }
KILN_FN(kt_index_select) { return Wrap(ENV, torch::index_select(T(0), IntArg(info, 1), T(2))); }
KILN_FN(kt_gather) { return Wrap(ENV, torch::gather(T(0), IntArg(info, 1), T(2))); }
// kt_masked_fill(t, mask, value)
KILN_FN(kt_masked_fill) { return Wrap(ENV, T(0).masked_fill(T(1), ScalarArg(info, 2))); }
// kt_where(condition, a, b): condition ? a : b, broadcasting
KILN_FN(kt_where) { return Wrap(ENV, torch::where(T(0), T(1), T(2))); }
KILN_FN(kt_tril) { return Wrap(ENV, torch::tril(T(0), IntArg(info, 1))); }
KILN_FN(kt_triu) { return Wrap(ENV, torch::triu(T(0), IntArg(info, 1))); }

// ---- reductions: dims undefined means all dimensions ----
// kt_sum(t, dims?, keepdim)
KILN_FN(kt_sum) {
  if (IsMissing(info, 1)) return Wrap(ENV, T(0).sum());
  return Wrap(ENV, T(0).sum(IntListArg(info, 1), BoolArg(info, 2)));
}
KILN_FN(kt_mean) {
  if (IsMissing(info, 1)) return Wrap(ENV, T(0).mean());
  return Wrap(ENV, T(0).mean(IntListArg(info, 1), BoolArg(info, 2)));
}
// kt_max(t, dim?, keepdim) -> tensor (all) or [values, indices]
KILN_FN(kt_max) {
  if (IsMissing(info, 1)) return Wrap(ENV, T(0).max());
  return WrapPair(ENV, T(0).max(IntArg(info, 1), BoolArg(info, 2)));
}
KILN_FN(kt_min) {
  if (IsMissing(info, 1)) return Wrap(ENV, T(0).min());
  return WrapPair(ENV, T(0).min(IntArg(info, 1), BoolArg(info, 2)));
}
// kt_argmax(t, dim?, keepdim)
KILN_FN(kt_argmax) {
  c10::optional<int64_t> dim;
  if (!IsMissing(info, 1)) dim = IntArg(info, 1);
  return Wrap(ENV, T(0).argmax(dim, !IsMissing(info, 2) && BoolArg(info, 2)));
}
// kt_logsumexp(t, dims, keepdim)
KILN_FN(kt_logsumexp) { return Wrap(ENV, torch::logsumexp(T(0), IntListArg(info, 1), BoolArg(info, 2))); }
// kt_norm(t, p, dims, keepdim)
KILN_FN(kt_norm) { return Wrap(ENV, torch::norm(T(0), ScalarArg(info, 1), IntListArg(info, 2), BoolArg(info, 3))); }
KILN_FN(kt_any) { return Wrap(ENV, T(0).any()); }
KILN_FN(kt_all) { return Wrap(ENV, T(0).all()); }
// kt_topk(t, k, dim, largest, sorted) -> [values, indices]
KILN_FN(kt_topk) { return WrapPair(ENV, T(0).topk(IntArg(info, 1), IntArg(info, 2), BoolArg(info, 3), BoolArg(info, 4))); }
// kt_sort(t, dim, descending, stable) -> [values, indices]
KILN_FN(kt_sort) { return WrapPair(ENV, T(0).sort(BoolArg(info, 3), IntArg(info, 1), BoolArg(info, 2))); }
KILN_FN(kt_cumsum) { return Wrap(ENV, T(0).cumsum(IntArg(info, 1))); }

// ---- losses (ATen's fused kernels) ----
// kt_cross_entropy(logits, target, weight?, reduction, ignoreIndex, labelSmoothing)
KILN_FN(kt_cross_entropy) {
  return Wrap(ENV, torch::cross_entropy_loss(T(0), T(1), OptTensorArg(info, 2), ReductionArg(info, 3), IntArg(info, 4), DoubleArg(info, 5)));
}
// kt_bce_with_logits(logits, target, weight?, posWeight?, reduction)
KILN_FN(kt_bce_with_logits) {
  return Wrap(ENV, torch::binary_cross_entropy_with_logits(T(0), T(1), OptTensorArg(info, 2), OptTensorArg(info, 3), ReductionArg(info, 4)));
}
// kt_mse_loss(input, target, reduction)
KILN_FN(kt_mse_loss) { return Wrap(ENV, torch::mse_loss(T(0), T(1), ReductionArg(info, 2))); }
// kt_kl_div(input (log-probabilities), target, reduction, logTarget); reduction "batchmean"
// is composed in TypeScript from "sum", as torch.nn.functional.kl_div does.
KILN_FN(kt_kl_div) { return Wrap(ENV, torch::kl_div(T(0), T(1), ReductionArg(info, 2), BoolArg(info, 3))); }

// ---- in-place ops, for initialisation and for updates under noGrad ----
KILN_FN(kt_zero_) {
  T(0).zero_();
  return ENV.Undefined();
}
KILN_FN(kt_fill_) {
  T(0).fill_(ScalarArg(info, 1));
  return ENV.Undefined();
}
KILN_FN(kt_copy_) {
  T(0).copy_(T(1));
  return ENV.Undefined();
}
// kt_normal_(t, mean, std), kt_uniform_(t, from, to): from the seeded generator
KILN_FN(kt_normal_) {
  T(0).normal_(DoubleArg(info, 1), DoubleArg(info, 2));
  return ENV.Undefined();
}
KILN_FN(kt_uniform_) {
  T(0).uniform_(DoubleArg(info, 1), DoubleArg(info, 2));
  return ENV.Undefined();
}
// kt_add_(t, other, alpha): t += alpha * other
KILN_FN(kt_add_) {
  T(0).add_(T(1), ScalarArg(info, 2));
  return ENV.Undefined();
}
KILN_FN(kt_mul_) {
  T(0).mul_(T(1));
  return ENV.Undefined();
}
KILN_FN(kt_mul_scalar_) {
  T(0).mul_(ScalarArg(info, 1));
  return ENV.Undefined();
}

}  // namespace kiln
