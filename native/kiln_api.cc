// Kiln's libtorch shim: handles, argument conversion, creation, conversion to and from
// JavaScript memory, autograd, optimizers and global state. Element-wise and structural ops
// live in kiln_ops.cc. Conventions are in kiln.h.
#include "kiln.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/version.h>

#include <atomic>
#include <deque>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace kiln {

// ---------------------------------------------------------------------------------------
// Registry of exported functions
// ---------------------------------------------------------------------------------------
static std::vector<std::pair<const char*, Fn>>& Registry() {
  static std::vector<std::pair<const char*, Fn>> registry;
  return registry;
}
Registrar::Registrar(const char* name, Fn fn) { Registry().emplace_back(name, fn); }

// The N-API entry point of every shim function. It is registered with the shim function as
// its data pointer and builds one CallbackInfo (a single napi_get_cb_info); node-addon-api's
// Function::New would call napi_get_cb_info twice and go through a std::function, which
// measured about 20 ns more per call on the hottest paths.
static napi_value Entry(napi_env env, napi_callback_info callbackInfo) {
  Napi::CallbackInfo info(env, callbackInfo);
  Fn fn = reinterpret_cast<Fn>(info.Data());
  try {
    return fn(info);
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();
    return nullptr;
  }
}

void ExportAll(Napi::Env env, Napi::Object exports) {
  for (const auto& [name, fn] : Registry()) {
    napi_value function;
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, Entry, reinterpret_cast<void*>(fn), &function));
    exports.Set(name, Napi::Value(env, function));
  }
}

// ---------------------------------------------------------------------------------------
// Shared JavaScript memory released from another thread
// ---------------------------------------------------------------------------------------
// A tensor created with `share` borrows a JavaScript ArrayBuffer and keeps it alive with a
// napi reference. libtorch may free that storage on another thread (an autograd worker, for
// instance), where napi calls are not allowed, so such releases are queued and drained on
// the JavaScript thread at the next tensor creation.
struct SharedBuffer {
  napi_env env;
  napi_ref ref;
};
static std::thread::id jsThread;
static std::mutex pendingMutex;
static std::vector<SharedBuffer*> pendingReleases;
static std::atomic<bool> hasPendingReleases{false};

static void ReleaseSharedBuffer(SharedBuffer* shared) {
  napi_delete_reference(shared->env, shared->ref);
  delete shared;
}
static void DrainPendingReleases() {
  if (!hasPendingReleases.load(std::memory_order_acquire)) return;
  std::vector<SharedBuffer*> drained;
  {
    std::lock_guard<std::mutex> lock(pendingMutex);
    drained.swap(pendingReleases);
    hasPendingReleases.store(false, std::memory_order_release);
  }
  for (SharedBuffer* shared : drained) ReleaseSharedBuffer(shared);
}

// ---------------------------------------------------------------------------------------
// Tensor handles
// ---------------------------------------------------------------------------------------
// A tensor handle is a JS number: a slot index in the low 32 bits and the slot's generation
// above them. A freed slot's generation is bumped, so a stale handle is detected ("the tensor
// was disposed") instead of reaching freed memory. Numbers cost far less to create than napi
// externals with finalizers (measured: about 1 us less per op); the TypeScript layer owns
// each handle and supplies the GC backstop with a FinalizationRegistry.
// The table is per JS thread (a worker thread has its own); references into a std::deque stay
// valid when it grows, so a TensorArg reference survives the Wrap of a result.
struct Slot {
  torch::Tensor tensor;
  uint32_t generation = 0;
  int64_t reportedBytes = 0;
};
static thread_local std::deque<Slot> slots;
static thread_local std::vector<uint32_t> freeSlots;
static thread_local int64_t liveHandles = 0;
static constexpr double kGenerationScale = 4294967296.0;  // 2^32
static constexpr uint32_t kGenerationMask = (1u << 20) - 1;  // keeps handles below 2^52

// Native bytes are reported to V8 (napi_adjust_external_memory) in steps of at least 1 MiB,
// so that the GC sees libtorch's memory without a V8 call on every small op.
static thread_local int64_t unreportedBytes = 0;
static constexpr int64_t kReportStep = 1 << 20;
static void AccountBytes(napi_env env, int64_t delta) {
  unreportedBytes += delta;
  if (unreportedBytes >= kReportStep || unreportedBytes <= -kReportStep) {
    int64_t adjusted;
    napi_adjust_external_memory(env, unreportedBytes, &adjusted);
    unreportedBytes = 0;
  }
}

static int64_t StorageBytes(const torch::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

Napi::Value Wrap(Napi::Env env, torch::Tensor tensor) {
  DrainPendingReleases();
  if (!tensor.defined()) throw std::runtime_error("libtorch returned an undefined tensor");
  uint32_t index;
  if (!freeSlots.empty()) {
    index = freeSlots.back();
    freeSlots.pop_back();
  } else {
    if (slots.size() >= 0xFFFFFFFFu) throw std::runtime_error("too many live tensors");
    index = static_cast<uint32_t>(slots.size());
    slots.emplace_back();
  }
  Slot& slot = slots[index];
  slot.tensor = std::move(tensor);
  slot.reportedBytes = StorageBytes(slot.tensor);
  AccountBytes(env, slot.reportedBytes);
  ++liveHandles;
  return Napi::Number::New(env, static_cast<double>(slot.generation) * kGenerationScale + static_cast<double>(index));
}

Napi::Value WrapList(Napi::Env env, const std::vector<torch::Tensor>& tensors) {
  Napi::Array out = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) out.Set(static_cast<uint32_t>(i), Wrap(env, tensors[i]));
  return out;
}

Napi::Value WrapPair(Napi::Env env, const std::tuple<torch::Tensor, torch::Tensor>& pair) {
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Wrap(env, std::get<0>(pair)));
  out.Set(1u, Wrap(env, std::get<1>(pair)));
  return out;
}

static std::string ArgName(size_t i) { return "argument " + std::to_string(i); }

// The live slot a handle names, or nullptr when it is stale (freed) or malformed.
static Slot* SlotOf(double handle) {
  if (!(handle >= 0) || handle >= 9007199254740992.0) return nullptr;
  uint64_t bits = static_cast<uint64_t>(handle);
  if (static_cast<double>(bits) != handle) return nullptr;
  uint32_t index = static_cast<uint32_t>(bits & 0xFFFFFFFFu);
  uint32_t generation = static_cast<uint32_t>(bits >> 32);
  if (index >= slots.size()) return nullptr;
  Slot& slot = slots[index];
  if (slot.generation != generation || !slot.tensor.defined()) return nullptr;
  return &slot;
}

// `describe` names the argument for an error message; it runs only when the handle is bad, so
// the hot path builds no strings (measured: about 50 ns per tensor argument).
template <typename Describe>
static torch::Tensor& HandleTensor(Napi::Value value, Describe describe) {
  double handle;
  // napi_get_value_double checks the type itself; no separate napi_typeof on the hot path.
  if (napi_get_value_double(value.Env(), value, &handle) != napi_ok) throw std::invalid_argument(describe() + ": expected a tensor handle");
  Slot* slot = SlotOf(handle);
  if (slot == nullptr) throw std::invalid_argument(describe() + ": the tensor was disposed (or the handle is not a tensor)");
  return slot->tensor;
}

torch::Tensor& TensorArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) throw std::invalid_argument(ArgName(i) + ": expected a tensor handle");
  return HandleTensor(info[i], [i] { return ArgName(i); });
}

bool IsMissing(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsUndefined() || info[i].IsNull();
}

c10::optional<torch::Tensor> OptTensorArg(const Napi::CallbackInfo& info, size_t i) {
  if (IsMissing(info, i)) return c10::nullopt;
  return TensorArg(info, i);
}

std::vector<torch::Tensor> TensorListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw std::invalid_argument(ArgName(i) + ": expected an array of tensors");
  Napi::Array array = info[i].As<Napi::Array>();
  std::vector<torch::Tensor> out;
  out.reserve(array.Length());
  for (uint32_t k = 0; k < array.Length(); ++k) {
    out.push_back(HandleTensor(array.Get(k), [i, k] { return ArgName(i) + "[" + std::to_string(k) + "]"; }));
  }
  return out;
}

double DoubleArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw std::invalid_argument(ArgName(i) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

c10::optional<double> OptDoubleArg(const Napi::CallbackInfo& info, size_t i) {
  if (IsMissing(info, i)) return c10::nullopt;
  return DoubleArg(info, i);
}

int64_t IntArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw std::invalid_argument(ArgName(i) + ": expected an integer");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v != static_cast<double>(static_cast<int64_t>(v))) throw std::invalid_argument(ArgName(i) + ": expected an integer, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

bool BoolArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsBoolean()) throw std::invalid_argument(ArgName(i) + ": expected a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) throw std::invalid_argument(ArgName(i) + ": expected a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> IntListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw std::invalid_argument(ArgName(i) + ": expected an array of integers");
  Napi::Array array = info[i].As<Napi::Array>();
  std::vector<int64_t> out(array.Length());
  for (uint32_t k = 0; k < array.Length(); ++k) {
    Napi::Value v = array.Get(k);
    if (!v.IsNumber()) throw std::invalid_argument(ArgName(i) + "[" + std::to_string(k) + "]: expected an integer");
    out[k] = v.As<Napi::Number>().Int64Value();
  }
  return out;
}

static const std::vector<torch::ScalarType>& KnownDtypes() {
  static const std::vector<torch::ScalarType> known = {torch::kFloat32, torch::kFloat64, torch::kFloat16, torch::kBFloat16,
                                                       torch::kInt64,   torch::kInt32,   torch::kUInt8,   torch::kBool};
  return known;
}

torch::ScalarType DtypeArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t code = IntArg(info, i);
  for (torch::ScalarType t : KnownDtypes())
    if (static_cast<int64_t>(t) == code) return t;
  throw std::invalid_argument(ArgName(i) + ": unknown dtype code " + std::to_string(code));
}

torch::Device DeviceArg(const Napi::CallbackInfo& info, size_t i) {
  if (IsMissing(info, i)) return torch::Device(torch::kCPU);
  return torch::Device(StringArg(info, i));  // "cpu", "cuda", "cuda:1"; c10 validates the text
}

torch::Scalar ScalarArg(const Napi::CallbackInfo& info, size_t i) {
  if (i < info.Length() && info[i].IsBoolean()) return torch::Scalar(info[i].As<Napi::Boolean>().Value());
  double v = DoubleArg(info, i);
  if (std::isfinite(v) && v == static_cast<double>(static_cast<int64_t>(v)) && std::abs(v) < 9.007199254740992e15)
    return torch::Scalar(static_cast<int64_t>(v));
  return torch::Scalar(v);
}

int64_t ReductionArg(const Napi::CallbackInfo& info, size_t i) {
  std::string r = StringArg(info, i);
  if (r == "none") return at::Reduction::None;
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  throw std::invalid_argument(ArgName(i) + ": reduction must be 'none', 'mean' or 'sum', got '" + r + "'");
}

static torch::TensorOptions Options(const Napi::CallbackInfo& info, size_t dtypeIndex, size_t deviceIndex) {
  return torch::TensorOptions().dtype(DtypeArg(info, dtypeIndex)).device(DeviceArg(info, deviceIndex));
}

// ---------------------------------------------------------------------------------------
// Lifetime
// ---------------------------------------------------------------------------------------
// kt_free(t): drop this handle's reference now (storage goes when no view or graph holds it).
// Freeing a stale handle is a no-op, so a GC backstop racing an explicit dispose is harmless.
KILN_FN(kt_free) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw std::invalid_argument("argument 0: expected a tensor handle");
  double handle = info[0].As<Napi::Number>().DoubleValue();
  Slot* slot = SlotOf(handle);
  if (slot == nullptr) return info.Env().Undefined();
  slot->tensor = torch::Tensor();
  AccountBytes(info.Env(), -slot->reportedBytes);
  slot->reportedBytes = 0;
  slot->generation = (slot->generation + 1) & kGenerationMask;
  freeSlots.push_back(static_cast<uint32_t>(static_cast<uint64_t>(handle) & 0xFFFFFFFFu));
  --liveHandles;
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------------------------
KILN_FN(kt_manual_seed) {
  torch::manual_seed(static_cast<uint64_t>(IntArg(info, 0)));
  return info.Env().Undefined();
}
// kt_zeros(shape, dtype, device)
KILN_FN(kt_zeros) { return Wrap(info.Env(), torch::zeros(IntListArg(info, 0), Options(info, 1, 2))); }
KILN_FN(kt_ones) { return Wrap(info.Env(), torch::ones(IntListArg(info, 0), Options(info, 1, 2))); }
KILN_FN(kt_empty) { return Wrap(info.Env(), torch::empty(IntListArg(info, 0), Options(info, 1, 2))); }
// kt_full(shape, value, dtype, device)
KILN_FN(kt_full) { return Wrap(info.Env(), torch::full(IntListArg(info, 0), ScalarArg(info, 1), Options(info, 2, 3))); }
// kt_arange(start, end, step, dtype, device)
KILN_FN(kt_arange) {
  return Wrap(info.Env(), torch::arange(ScalarArg(info, 0), ScalarArg(info, 1), ScalarArg(info, 2), Options(info, 3, 4)));
}
// kt_randn(shape, dtype, device), drawn from the generator seeded by kt_manual_seed
KILN_FN(kt_randn) { return Wrap(info.Env(), torch::randn(IntListArg(info, 0), Options(info, 1, 2))); }
KILN_FN(kt_rand) { return Wrap(info.Env(), torch::rand(IntListArg(info, 0), Options(info, 1, 2))); }
// kt_randint(low, high, shape, dtype, device)
KILN_FN(kt_randint) {
  return Wrap(info.Env(), torch::randint(IntArg(info, 0), IntArg(info, 1), IntListArg(info, 2), Options(info, 3, 4)));
}
// kt_randperm(n, device)
KILN_FN(kt_randperm) {
  return Wrap(info.Env(), torch::randperm(IntArg(info, 0), torch::TensorOptions().dtype(torch::kInt64).device(DeviceArg(info, 1))));
}

// kt_from_buffer(typedArrayOrBuffer, dtype, shape, device, share)
// Copies the bytes by default. With share=true on the CPU, the tensor borrows the
// ArrayBuffer's memory (no copy) and keeps the buffer alive until the storage is freed.
KILN_FN(kt_from_buffer) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !(info[0].IsTypedArray() || info[0].IsArrayBuffer()))
    throw std::invalid_argument("argument 0: expected a TypedArray, Buffer or ArrayBuffer");
  void* data = nullptr;
  size_t byteLength = 0;
  napi_value bufferValue = info[0];
  if (info[0].IsTypedArray()) {
    Napi::TypedArray typed = info[0].As<Napi::TypedArray>();
    Napi::ArrayBuffer buffer = typed.ArrayBuffer();
    data = static_cast<uint8_t*>(buffer.Data()) + typed.ByteOffset();
    byteLength = typed.ByteLength();
    bufferValue = buffer;
  } else {
    Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
    data = buffer.Data();
    byteLength = buffer.ByteLength();
  }
  torch::ScalarType dtype = DtypeArg(info, 1);
  std::vector<int64_t> shape = IntListArg(info, 2);
  torch::Device device = DeviceArg(info, 3);
  bool share = !IsMissing(info, 4) && BoolArg(info, 4);
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("argument 2: negative dimension in shape");
    numel *= d;
  }
  size_t expected = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (expected != byteLength) {
    std::ostringstream msg;
    msg << "shape " << c10::IntArrayRef(shape) << " of " << c10::toString(dtype) << " needs " << expected << " bytes, the buffer has " << byteLength;
    throw std::invalid_argument(msg.str());
  }
  auto cpu = torch::TensorOptions().dtype(dtype).device(torch::kCPU);
  const bool aligned = reinterpret_cast<uintptr_t>(data) % c10::elementSize(dtype) == 0;
  if (share && device.is_cpu() && aligned && numel > 0) {
    napi_ref ref;
    NAPI_THROW_IF_FAILED(env, napi_create_reference(env, bufferValue, 1, &ref), Napi::Value());
    auto* shared = new SharedBuffer{env, ref};
    auto deleter = [shared](void*) {
      if (std::this_thread::get_id() == jsThread) {
        ReleaseSharedBuffer(shared);
      } else {
        std::lock_guard<std::mutex> lock(pendingMutex);
        pendingReleases.push_back(shared);
        hasPendingReleases.store(true, std::memory_order_release);
      }
    };
    return Wrap(env, torch::from_blob(data, shape, deleter, cpu));
  }
  torch::Tensor out = torch::empty(shape, cpu);
  if (numel > 0) std::memcpy(out.data_ptr(), data, expected);
  return Wrap(env, device.is_cpu() ? out : out.to(device));
}

// kt_to_buffer(t, share) -> ArrayBuffer holding the tensor's elements in row-major order.
// share=true returns a view of the tensor's own memory when it is a contiguous CPU tensor:
// the ArrayBuffer then keeps that storage alive and sees later in-place writes.
KILN_FN(kt_to_buffer) {
  Napi::Env env = info.Env();
  torch::Tensor t = TensorArg(info, 0).detach();
  bool share = !IsMissing(info, 1) && BoolArg(info, 1);
  if (!t.device().is_cpu()) t = t.to(torch::kCPU);
  size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (share && t.is_contiguous() && bytes > 0) {
    auto* keep = new torch::Tensor(t);
    return Napi::ArrayBuffer::New(env, keep->data_ptr(), bytes, [](Napi::Env, void*, torch::Tensor* held) { delete held; }, keep);
  }
  t = t.contiguous();
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(out.Data(), t.data_ptr(), bytes);
  return out;
}

// ---------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------
KILN_FN(kt_shape) {
  torch::Tensor& t = TensorArg(info, 0);
  Napi::Array out = Napi::Array::New(info.Env(), t.dim());
  for (int64_t d = 0; d < t.dim(); ++d) out.Set(static_cast<uint32_t>(d), Napi::Number::New(info.Env(), static_cast<double>(t.size(d))));
  return out;
}
KILN_FN(kt_dtype) { return Napi::Number::New(info.Env(), static_cast<int>(TensorArg(info, 0).scalar_type())); }
KILN_FN(kt_device) { return Napi::String::New(info.Env(), TensorArg(info, 0).device().str()); }
KILN_FN(kt_numel) { return Napi::Number::New(info.Env(), static_cast<double>(TensorArg(info, 0).numel())); }
KILN_FN(kt_is_contiguous) { return Napi::Boolean::New(info.Env(), TensorArg(info, 0).is_contiguous()); }
// kt_item(t) -> number (a boolean tensor gives 0 or 1); a device sync for CUDA tensors.
KILN_FN(kt_item) { return Napi::Number::New(info.Env(), TensorArg(info, 0).item().toDouble()); }
KILN_FN(kt_to_string) {
  std::ostringstream s;
  s << TensorArg(info, 0);
  return Napi::String::New(info.Env(), s.str());
}

// kt_to(t, dtype, device): a no-op returns a new handle on the same tensor.
KILN_FN(kt_to) {
  torch::Tensor& t = TensorArg(info, 0);
  return Wrap(info.Env(), t.to(DeviceArg(info, 2), DtypeArg(info, 1)));
}
KILN_FN(kt_clone) { return Wrap(info.Env(), TensorArg(info, 0).clone()); }
KILN_FN(kt_contiguous) { return Wrap(info.Env(), TensorArg(info, 0).contiguous()); }

// ---------------------------------------------------------------------------------------
// Autograd
// ---------------------------------------------------------------------------------------
KILN_FN(kt_set_requires_grad) {
  TensorArg(info, 0).set_requires_grad(BoolArg(info, 1));
  return info.Env().Undefined();
}
KILN_FN(kt_requires_grad) { return Napi::Boolean::New(info.Env(), TensorArg(info, 0).requires_grad()); }
// kt_backward(t, grad?, retainGraph)
KILN_FN(kt_backward) {
  torch::Tensor& t = TensorArg(info, 0);
  c10::optional<torch::Tensor> grad = OptTensorArg(info, 1);
  bool retain = !IsMissing(info, 2) && BoolArg(info, 2);
  t.backward(grad.value_or(torch::Tensor()), retain);
  return info.Env().Undefined();
}
// kt_grad(t) -> handle or undefined when no gradient has been accumulated
KILN_FN(kt_grad) {
  const torch::Tensor& g = TensorArg(info, 0).grad();
  if (!g.defined()) return info.Env().Undefined();
  return Wrap(info.Env(), g);
}
// Drops a gradient (setToNone) or zeroes it in place, detached from any graph, as
// torch.optim.Optimizer.zero_grad does.
static void ZeroGrad(torch::Tensor& t, bool setToNone) {
  torch::Tensor& g = t.mutable_grad();
  if (!g.defined()) return;
  if (setToNone) {
    g.reset();
  } else {
    g = g.detach();
    g.zero_();
  }
}
// kt_zero_grad(t, setToNone)
KILN_FN(kt_zero_grad) {
  ZeroGrad(TensorArg(info, 0), !IsMissing(info, 1) && BoolArg(info, 1));
  return info.Env().Undefined();
}
KILN_FN(kt_detach) { return Wrap(info.Env(), TensorArg(info, 0).detach()); }
// kg_set_grad_enabled(enabled) -> the previous mode, so callers can restore it in finally.
KILN_FN(kg_set_grad_enabled) {
  bool previous = torch::GradMode::is_enabled();
  torch::GradMode::set_enabled(BoolArg(info, 0));
  return Napi::Boolean::New(info.Env(), previous);
}
KILN_FN(kg_is_grad_enabled) { return Napi::Boolean::New(info.Env(), torch::GradMode::is_enabled()); }

// kt_clip_grad_norm(params, maxNorm, normType) -> total norm before clipping
KILN_FN(kt_clip_grad_norm) {
  std::vector<torch::Tensor> params = TensorListArg(info, 0);
  double total = torch::nn::utils::clip_grad_norm_(params, DoubleArg(info, 1), DoubleArg(info, 2));
  return Napi::Number::New(info.Env(), total);
}

// ---------------------------------------------------------------------------------------
// Autocast (mixed precision). Device "cpu" uses the CPU autocast state, "cuda" the GPU one.
// ---------------------------------------------------------------------------------------
// kg_autocast_enter(deviceType, dtype) -> [wasEnabled, previousDtype]
KILN_FN(kg_autocast_enter) {
  std::string device = StringArg(info, 0);
  torch::ScalarType dtype = DtypeArg(info, 1);
  Napi::Array previous = Napi::Array::New(info.Env(), 2);
  if (device == "cpu") {
    previous.Set(0u, Napi::Boolean::New(info.Env(), at::autocast::is_cpu_enabled()));
    previous.Set(1u, Napi::Number::New(info.Env(), static_cast<int>(at::autocast::get_autocast_cpu_dtype())));
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else if (device == "cuda") {
    previous.Set(0u, Napi::Boolean::New(info.Env(), at::autocast::is_enabled()));
    previous.Set(1u, Napi::Number::New(info.Env(), static_cast<int>(at::autocast::get_autocast_gpu_dtype())));
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    throw std::invalid_argument("argument 0: autocast device must be 'cpu' or 'cuda', got '" + device + "'");
  }
  at::autocast::increment_nesting();
  return previous;
}
// kg_autocast_exit(deviceType, wasEnabled, previousDtype)
KILN_FN(kg_autocast_exit) {
  std::string device = StringArg(info, 0);
  bool wasEnabled = BoolArg(info, 1);
  torch::ScalarType dtype = DtypeArg(info, 2);
  // The cast cache holds fp32->bf16 weight copies for one forward pass; drop it when the
  // outermost autocast region ends, as torch.autocast.__exit__ does.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (device == "cpu") {
    at::autocast::set_cpu_enabled(wasEnabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(wasEnabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------
// Global state and build information
// ---------------------------------------------------------------------------------------
KILN_FN(kg_set_num_threads) {
  // libtorch rebuilds its thread pool on every call, even for the same count, and the new
  // threads spin for a while (measured: matmul at half speed); skip a no-op change.
  int threads = static_cast<int>(IntArg(info, 0));
  if (threads != torch::get_num_threads()) torch::set_num_threads(threads);
  return info.Env().Undefined();
}
KILN_FN(kg_get_num_threads) { return Napi::Number::New(info.Env(), torch::get_num_threads()); }
KILN_FN(kg_set_num_interop_threads) {
  at::set_num_interop_threads(static_cast<int>(IntArg(info, 0)));
  return info.Env().Undefined();
}
KILN_FN(kg_get_num_interop_threads) { return Napi::Number::New(info.Env(), at::get_num_interop_threads()); }
// kg_tune_malloc(mmapThreshold, trimThreshold) -> whether glibc took both settings. The policy
// (when to tune, which values) lives in src/engine/allocator.ts; this only forwards to mallopt.
KILN_FN(kg_tune_malloc) {
#if defined(__GLIBC__)
  const int mmapThreshold = static_cast<int>(IntArg(info, 0));
  const int trimThreshold = static_cast<int>(IntArg(info, 1));
  const bool ok = mallopt(M_MMAP_THRESHOLD, mmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, trimThreshold) == 1;
  return Napi::Boolean::New(info.Env(), ok);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}
// kg_live_tensors() -> handles created and neither freed nor finalized yet
KILN_FN(kg_live_tensors) { return Napi::Number::New(info.Env(), static_cast<double>(liveHandles)); }
KILN_FN(kg_build_info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  out.Set("cudaCompiled", Napi::Boolean::New(env, KILN_WITH_CUDA != 0));
  out.Set("cudaAvailable", Napi::Boolean::New(env, torch::cuda::is_available()));
  out.Set("cudaDeviceCount", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
  out.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
  out.Set("parallelInfo", at::get_parallel_info());
  return out;
}

// ---------------------------------------------------------------------------------------
// Optimizers (torch::optim). Each parameter group is {params, lr, weightDecay}.
// ---------------------------------------------------------------------------------------
struct OptimizerBox {
  std::unique_ptr<torch::optim::Optimizer> optimizer;
};
static void FinalizeOptimizer(Napi::Env, OptimizerBox* box) { delete box; }

static torch::optim::Optimizer& OptimizerArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsExternal()) throw std::invalid_argument(ArgName(i) + ": expected an optimizer handle");
  OptimizerBox* box = info[i].As<Napi::External<OptimizerBox>>().Data();
  if (!box->optimizer) throw std::invalid_argument(ArgName(i) + ": the optimizer was disposed");
  return *box->optimizer;
}

struct GroupSpec {
  std::vector<torch::Tensor> params;
  double lr;
  double weightDecay;
};

static std::vector<GroupSpec> GroupsArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw std::invalid_argument(ArgName(i) + ": expected an array of parameter groups");
  Napi::Array groups = info[i].As<Napi::Array>();
  std::vector<GroupSpec> out;
  for (uint32_t g = 0; g < groups.Length(); ++g) {
    Napi::Object group = groups.Get(g).As<Napi::Object>();
    Napi::Array params = group.Get("params").As<Napi::Array>();
    GroupSpec spec{{}, group.Get("lr").As<Napi::Number>().DoubleValue(), group.Get("weightDecay").As<Napi::Number>().DoubleValue()};
    for (uint32_t k = 0; k < params.Length(); ++k) {
      spec.params.push_back(HandleTensor(params.Get(k), [g, k] { return "group " + std::to_string(g) + " param " + std::to_string(k); }));
    }
    out.push_back(std::move(spec));
  }
  return out;
}

static Napi::Value WrapOptimizer(Napi::Env env, std::unique_ptr<torch::optim::Optimizer> optimizer) {
  return Napi::External<OptimizerBox>::New(env, new OptimizerBox{std::move(optimizer)}, FinalizeOptimizer);
}

// ko_adamw(groups, beta1, beta2, eps, amsgrad)
KILN_FN(ko_adamw) {
  std::vector<GroupSpec> specs = GroupsArg(info, 0);
  auto defaults = torch::optim::AdamWOptions().betas({DoubleArg(info, 1), DoubleArg(info, 2)}).eps(DoubleArg(info, 3)).amsgrad(BoolArg(info, 4));
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const GroupSpec& spec : specs) {
    auto options = std::make_unique<torch::optim::AdamWOptions>(defaults);
    options->lr(spec.lr).weight_decay(spec.weightDecay);
    groups.emplace_back(spec.params, std::move(options));
  }
  return WrapOptimizer(info.Env(), std::make_unique<torch::optim::AdamW>(std::move(groups), defaults));
}

// ko_sgd(groups, momentum, dampening, nesterov)
KILN_FN(ko_sgd) {
  std::vector<GroupSpec> specs = GroupsArg(info, 0);
  double firstLr = specs.empty() ? 0.01 : specs[0].lr;
  auto defaults = torch::optim::SGDOptions(firstLr).momentum(DoubleArg(info, 1)).dampening(DoubleArg(info, 2)).nesterov(BoolArg(info, 3));
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const GroupSpec& spec : specs) {
    auto options = std::make_unique<torch::optim::SGDOptions>(defaults);
    options->lr(spec.lr).weight_decay(spec.weightDecay);
    groups.emplace_back(spec.params, std::move(options));
  }
  return WrapOptimizer(info.Env(), std::make_unique<torch::optim::SGD>(std::move(groups), defaults));
}

KILN_FN(ko_step) {
  torch::NoGradGuard noGrad;
  OptimizerArg(info, 0).step();
  return info.Env().Undefined();
}
// ko_zero_grad(opt, setToNone)
KILN_FN(ko_zero_grad) {
  torch::optim::Optimizer& optimizer = OptimizerArg(info, 0);
  bool setToNone = !IsMissing(info, 1) && BoolArg(info, 1);
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) ZeroGrad(p, setToNone);
  return info.Env().Undefined();
}
static torch::optim::OptimizerParamGroup& GroupArg(const Napi::CallbackInfo& info, torch::optim::Optimizer& optimizer, size_t i) {
  int64_t g = IntArg(info, i);
  if (g < 0 || g >= static_cast<int64_t>(optimizer.param_groups().size()))
    throw std::invalid_argument("parameter group " + std::to_string(g) + " out of range (the optimizer has " + std::to_string(optimizer.param_groups().size()) + ")");
  return optimizer.param_groups()[g];
}
// ko_set_lr(opt, groupIndex, lr)
KILN_FN(ko_set_lr) {
  torch::optim::Optimizer& optimizer = OptimizerArg(info, 0);
  GroupArg(info, optimizer, 1).options().set_lr(DoubleArg(info, 2));
  return info.Env().Undefined();
}
KILN_FN(ko_get_lr) {
  torch::optim::Optimizer& optimizer = OptimizerArg(info, 0);
  return Napi::Number::New(info.Env(), GroupArg(info, optimizer, 1).options().get_lr());
}
KILN_FN(ko_group_count) { return Napi::Number::New(info.Env(), static_cast<double>(OptimizerArg(info, 0).param_groups().size())); }
// ko_save(opt) -> Buffer with torch::serialize's archive of the optimizer state
KILN_FN(ko_save) {
  torch::serialize::OutputArchive archive;
  OptimizerArg(info, 0).save(archive);
  std::ostringstream stream;
  archive.save_to(stream);
  std::string bytes = stream.str();
  return Napi::Buffer<char>::Copy(info.Env(), bytes.data(), bytes.size());
}
template <typename Options>
static void RestoreGroupOptions(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive groupsArchive;
  archive.read("param_groups", groupsArchive);
  std::vector<std::pair<std::vector<std::string>, std::unique_ptr<torch::optim::OptimizerOptions>>> saved;
  torch::optim::detail::serialize<Options>(groupsArchive, saved);
  for (size_t g = 0; g < saved.size() && g < optimizer.param_groups().size(); ++g)
    optimizer.param_groups()[g].set_options(std::move(saved[g].second));
}
// ko_load(opt, buffer)
KILN_FN(ko_load) {
  torch::optim::Optimizer& optimizer = OptimizerArg(info, 0);
  if (info.Length() < 2 || !info[1].IsBuffer()) throw std::invalid_argument("argument 1: expected a Buffer");
  Napi::Buffer<char> buffer = info[1].As<Napi::Buffer<char>>();
  torch::serialize::InputArchive archive;
  archive.load_from(buffer.Data(), buffer.Length());
  optimizer.load(archive);
  // libtorch 1.13's Optimizer::load restores the moments but not each group's options (lr,
  // weight decay, betas), which torch.optim's load_state_dict does; restore them here.
  if (dynamic_cast<torch::optim::AdamW*>(&optimizer) != nullptr) {
    RestoreGroupOptions<torch::optim::AdamWOptions>(archive, optimizer);
  } else if (dynamic_cast<torch::optim::SGD*>(&optimizer) != nullptr) {
    RestoreGroupOptions<torch::optim::SGDOptions>(archive, optimizer);
  }
  return info.Env().Undefined();
}
KILN_FN(ko_free) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw std::invalid_argument("argument 0: expected an optimizer handle");
  info[0].As<Napi::External<OptimizerBox>>().Data()->optimizer.reset();
  return info.Env().Undefined();
}

}  // namespace kiln

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  kiln::jsThread = std::this_thread::get_id();
  kiln::ExportAll(env, exports);
  return exports;
}

NODE_API_MODULE(kiln_native, Init)
