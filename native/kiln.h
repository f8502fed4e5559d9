// Kiln's libtorch shim: shared declarations.
//
// The shim only converts. Every exported function is a flat `kt_` (tensor), `ko_` (optimizer)
// or `kg_` (global state) function whose body turns N-API values into libtorch arguments,
// makes one libtorch call and wraps the result. No model, loss or schedule logic lives here
// (see ../shared/STYLE.md, "A C++ shim that only converts", after tch-rs's torch_api.cpp).
//
// Tensors cross into JavaScript as numeric handles into a per-thread slot table (kiln_api.cc).
// The TypeScript layer releases them deterministically with `kt_free`, which drops the
// libtorch reference at once; a FinalizationRegistry there is only a backstop.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace kiln {

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

// Registers a shim function under its JavaScript name; used by KILN_FN at static-init time.
struct Registrar {
  Registrar(const char* name, Fn fn);
};
void ExportAll(Napi::Env env, Napi::Object exports);

// KILN_FN(kt_add) { ... } defines kt_add with its body wrapped in one protect block that
// turns c10::Error (without its C++ backtrace) and std::exception into a JavaScript Error
// whose message starts with the shim function's name.
#define KILN_FN(name)                                                                      \
  static Napi::Value name##_body(const Napi::CallbackInfo& info);                          \
  static Napi::Value name(const Napi::CallbackInfo& info) {                                \
    try {                                                                                  \
      return name##_body(info);                                                            \
    } catch (const Napi::Error&) {                                                         \
      throw;                                                                               \
    } catch (const c10::Error& e) {                                                        \
      throw Napi::Error::New(info.Env(), std::string(#name ": ") + e.what_without_backtrace()); \
    } catch (const std::exception& e) {                                                    \
      throw Napi::Error::New(info.Env(), std::string(#name ": ") + e.what());              \
    }                                                                                      \
  }                                                                                        \
  static ::kiln::Registrar name##_registrar(#name, name);                                  \
  static Napi::Value name##_body(const Napi::CallbackInfo& info)

// ---- argument conversion (each throws std::invalid_argument naming the argument) ----
torch::Tensor& TensorArg(const Napi::CallbackInfo& info, size_t i);
c10::optional<torch::Tensor> OptTensorArg(const Napi::CallbackInfo& info, size_t i);
std::vector<torch::Tensor> TensorListArg(const Napi::CallbackInfo& info, size_t i);
double DoubleArg(const Napi::CallbackInfo& info, size_t i);
int64_t IntArg(const Napi::CallbackInfo& info, size_t i);
bool BoolArg(const Napi::CallbackInfo& info, size_t i);
std::string StringArg(const Napi::CallbackInfo& info, size_t i);
std::vector<int64_t> IntListArg(const Napi::CallbackInfo& info, size_t i);
c10::optional<double> OptDoubleArg(const Napi::CallbackInfo& info, size_t i);
torch::ScalarType DtypeArg(const Napi::CallbackInfo& info, size_t i);
torch::Device DeviceArg(const Napi::CallbackInfo& info, size_t i);
// Tensor handles are numbers too, so a function takes either a tensor or a scalar in a given
// position, never both: scalar forms are separate functions (kt_add / kt_add_scalar).
// A JS number becomes an integral Scalar when it is an integer (as a Python int literal
// would), otherwise a double; a JS boolean becomes a bool Scalar.
torch::Scalar ScalarArg(const Napi::CallbackInfo& info, size_t i);
bool IsMissing(const Napi::CallbackInfo& info, size_t i);
int64_t ReductionArg(const Napi::CallbackInfo& info, size_t i);

// ---- results ----
Napi::Value Wrap(Napi::Env env, torch::Tensor tensor);
Napi::Value WrapList(Napi::Env env, const std::vector<torch::Tensor>& tensors);
Napi::Value WrapPair(Napi::Env env, const std::tuple<torch::Tensor, torch::Tensor>& pair);

}  // namespace kiln
