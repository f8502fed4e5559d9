// Kiln's libtorch shim: collectives for data-parallel training, on PyTorch's own c10d.
//
// A process group crosses into JavaScript as an external (like an optimizer, kiln_api.cc)
// holding a c10d::ProcessGroupGloo and the store its ranks met through. Functions are flat
// and prefixed `kd_` (distributed); each converts its arguments, makes one c10d call and
// waits for it. Nothing here knows about gradients, models or training.
//
// Sources (Debian libtorch-dev 1.13 headers, /usr/include/torch/csrc/distributed/c10d/):
//   ProcessGroupGloo.hpp  the Gloo process group, Options (timeout, devices), device factories
//   TCPStore.hpp          TCPStoreOptions (port, isServer, numWorkers, waitWorkers, timeout)
//   PrefixStore.hpp       keys under a prefix, for a store shared with torchrun's agent
//   FileStore.hpp         a store in a shared file, for ranks on one machine (or one filesystem)
//   Work.hpp              Work::wait(timeout): throws "Operation timed out!" once it runs out
//   Types.hpp             AllreduceOptions, BroadcastOptions, AllgatherOptions, BarrierOptions
// ProcessGroupGloo.hpp is guarded by USE_C10D_GLOO (set in binding.gyp); Gloo's own headers
// come from Debian's libgloo-dev, and libtorch_cpu.so carries the implementation.
//
// Calls are synchronous: they block the JavaScript thread until every rank has taken part.
// That is how the training loop already calls the engine (a step cannot go on before its
// gradients are averaged), it keeps the tensor slot table on the thread that owns it (slots
// are thread_local, kiln_api.cc), and Gloo runs the transfer on its own worker thread
// anyway. Nothing waits forever: Gloo applies the group's timeout to every transfer, and
// each wait here is bounded as well (see WaitFor).
//
// Every failure (a bad argument, a dead peer, a timeout, an unreachable store) becomes one
// JavaScript Error, "rank <r>: <operation> failed after <ms> ms: <cause>", so a log from any
// rank says who failed, doing what, and how long it waited.
#include "kiln.h"

#if KILN_WITH_GLOO
#ifndef USE_C10D_GLOO
#error "kiln_dist.cc needs -DUSE_C10D_GLOO (native/libtorch.cjs --defines): ProcessGroupGloo.hpp is empty without it"
#endif

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <limits>

namespace kiln {

using Clock = std::chrono::steady_clock;
using Milliseconds = std::chrono::milliseconds;

struct GroupBox {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  c10::intrusive_ptr<c10d::Store> store;
  int rank;
  int size;
  Milliseconds timeout;
};
static void FinalizeGroup(Napi::Env, GroupBox* box) { delete box; }

// Gloo's own timeout (Options) normally fires first and names the transfer that stalled;
// Work::wait gets a little longer so that its plainer "Operation timed out!" is only the
// backstop for a worker thread that never reports at all.
static constexpr Milliseconds kWaitGrace{1000};

static void WaitFor(const c10::intrusive_ptr<c10d::Work>& work, const GroupBox& box) {
  work->wait(box.timeout + kWaitGrace);
}

static int64_t ElapsedMs(Clock::time_point start) {
  return std::chrono::duration_cast<Milliseconds>(Clock::now() - start).count();
}

// Runs `body` and turns any C++ failure into the one JavaScript Error format above.
// c10::Error is caught first so that its C++ backtrace stays out of the message.
template <typename Body>
static Napi::Value Guarded(Napi::Env env, int rank, const std::string& operation, Body body) {
  const Clock::time_point start = Clock::now();
  std::string cause;
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    cause = e.what_without_backtrace();
  } catch (const std::exception& e) {
    cause = e.what();
  }
  throw Napi::Error::New(env, "rank " + std::to_string(rank) + ": " + operation + " failed after " + std::to_string(ElapsedMs(start)) + " ms: " + cause);
}

// The group in argument 0, or nullptr when the argument is not a group (LiveGroup refuses it).
static GroupBox* GroupArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) return nullptr;
  return info[0].As<Napi::External<GroupBox>>().Data();
}

static GroupBox& LiveGroup(GroupBox* box) {
  if (box == nullptr) throw std::invalid_argument("argument 0: expected a process group handle");
  if (!box->group) throw std::invalid_argument("the process group was disposed");
  return *box;
}

// The rank for an error message: -1 when the argument was not a group at all.
static int RankOf(GroupBox* box) { return box == nullptr ? -1 : box->rank; }

static Milliseconds TimeoutArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t ms = IntArg(info, i);
  if (ms <= 0) throw std::invalid_argument("argument " + std::to_string(i) + ": expected a positive timeout in ms, got " + std::to_string(ms));
  return Milliseconds(ms);
}

// For error messages only, before the arguments are checked: argument i as an int or a
// string, or a placeholder when it is something else.
static int LooseInt(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) return -1;
  return info[i].As<Napi::Number>().Int32Value();
}
static std::string LooseString(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) return "?";
  return info[i].As<Napi::String>().Utf8Value();
}

// In-place collectives write through the tensor's data pointer as one flat block.
static void CheckContiguous(const torch::Tensor& tensor) {
  if (!tensor.is_contiguous()) throw std::invalid_argument("the tensor must be contiguous for an in-place collective (call .contiguous() first and use that tensor)");
}

// Checks rank and world size before any socket is opened, so a typo fails at once.
static void CheckRankAndSize(int64_t rank, int64_t size) {
  if (size < 1 || size > std::numeric_limits<int>::max()) throw std::invalid_argument("world size must be a positive integer, got " + std::to_string(size));
  if (rank < 0 || rank >= size) throw std::invalid_argument("rank must be in [0, " + std::to_string(size) + "), got " + std::to_string(rank));
}

// The address this rank's Gloo transport binds to and advertises through the store. An
// empty string asks c10d for its default (this machine's hostname, else loopback), as
// torch.distributed does when GLOO_SOCKET_IFNAME is unset.
static std::shared_ptr<::gloo::transport::Device> GlooDevice(const std::string& deviceHost) {
  if (deviceHost.empty()) return c10d::ProcessGroupGloo::createDefaultDevice();
  return c10d::ProcessGroupGloo::createDeviceForHostname(deviceHost);
}

// Forms the group: every rank blocks here until all `size` ranks have exchanged Gloo
// addresses through the store, or the timeout runs out.
static Napi::Value NewGroup(Napi::Env env, c10::intrusive_ptr<c10d::Store> store, int rank, int size, Milliseconds timeout, const std::string& deviceHost) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(GlooDevice(deviceHost));
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
  auto* box = new GroupBox{std::move(group), std::move(store), rank, size, timeout};
  return Napi::External<GroupBox>::New(env, box, FinalizeGroup);
}

// kd_create_tcp(host, port, rank, worldSize, timeoutMs, deviceHost, isServer, keyPrefix) -> group
// The rank with isServer (rank 0, by default in TypeScript) hosts the TCPStore server; the
// others connect to it, retrying until the timeout.
// Under torchrun the elastic agent already hosts the store at MASTER_ADDR:MASTER_PORT, so
// every worker is a client and keys go under a per-attempt prefix, as torch.distributed
// does (_create_c10d_store, PrefixStore "/worker/attempt_<n>").
KILN_FN(kd_create_tcp) {
  const std::string where = LooseString(info, 0) + ":" + std::to_string(LooseInt(info, 1));
  const std::string what = "creating the process group of " + std::to_string(LooseInt(info, 3)) + " ranks (TCP store at " + where + ")";
  return Guarded(info.Env(), LooseInt(info, 2), what, [&]() -> Napi::Value {
    const std::string host = StringArg(info, 0);
    const int64_t port = IntArg(info, 1);
    const int64_t checkedRank = IntArg(info, 2);
    const int64_t size = IntArg(info, 3);
    const Milliseconds timeout = TimeoutArg(info, 4);
    const std::string deviceHost = StringArg(info, 5);
    const bool isServer = BoolArg(info, 6);
    const std::string keyPrefix = StringArg(info, 7);
    CheckRankAndSize(checkedRank, size);
    if (port < 1 || port > 65535) throw std::invalid_argument("port must be in [1, 65535], got " + std::to_string(port));
    c10d::TCPStoreOptions storeOptions;
    storeOptions.port = static_cast<std::uint16_t>(port);
    storeOptions.isServer = isServer;
    storeOptions.numWorkers = static_cast<std::size_t>(size);
    // Not waiting for workers in the store: in 1.13 that wait gives up silently at the
    // timeout, and Gloo's rendezvous (which waits for every peer's address under the same
    // timeout anyway) then waits a second time, so a missing peer took twice the timeout.
    storeOptions.waitWorkers = false;
    storeOptions.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(host, storeOptions);
    if (!keyPrefix.empty()) store = c10::make_intrusive<c10d::PrefixStore>(keyPrefix, store);
    return NewGroup(info.Env(), std::move(store), static_cast<int>(checkedRank), static_cast<int>(size), timeout, deviceHost);
  });
}

// kd_create_file(path, rank, worldSize, timeoutMs, deviceHost) -> group
// The file must be fresh for each run: FileStore counts the ranks that open it and the last
// one to leave deletes it.
KILN_FN(kd_create_file) {
  const std::string what = "creating the process group of " + std::to_string(LooseInt(info, 2)) + " ranks (file store " + LooseString(info, 0) + ")";
  return Guarded(info.Env(), LooseInt(info, 1), what, [&]() -> Napi::Value {
    const std::string path = StringArg(info, 0);
    const int64_t checkedRank = IntArg(info, 1);
    const int64_t size = IntArg(info, 2);
    const Milliseconds timeout = TimeoutArg(info, 3);
    const std::string deviceHost = StringArg(info, 4);
    CheckRankAndSize(checkedRank, size);
    auto store = c10::make_intrusive<c10d::FileStore>(path, static_cast<int>(size));
    // FileStore starts with the store default (300 s); rendezvous must honour ours.
    store->setTimeout(timeout);
    return NewGroup(info.Env(), std::move(store), static_cast<int>(checkedRank), static_cast<int>(size), timeout, deviceHost);
  });
}

// kd_allreduce(group, tensor, op: 'sum' | 'avg') — in place.
KILN_FN(kd_allreduce) {
  GroupBox* box = GroupArg(info);
  return Guarded(info.Env(), RankOf(box), "allreduce", [&]() -> Napi::Value {
    GroupBox& g = LiveGroup(box);
    torch::Tensor& tensor = TensorArg(info, 1);
    const std::string op = StringArg(info, 2);
    if (op != "sum" && op != "avg") throw std::invalid_argument("argument 2: expected 'sum' or 'avg', got '" + op + "'");
    CheckContiguous(tensor);
    // Gloo in libtorch 1.13 has no AVG reduce op (c10d offers it for NCCL only), so 'avg'
    // is a SUM followed by an in-place division by the world size. Integer tensors are
    // refused up front: every rank refuses alike, so none is left waiting in the SUM.
    if (op == "avg" && !at::isFloatingType(tensor.scalar_type())) {
      throw std::invalid_argument(std::string("'avg' needs a floating-point tensor, got ") + c10::toString(tensor.scalar_type()) + "; use 'sum' and divide yourself");
    }
    std::vector<at::Tensor> tensors{tensor};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    options.timeout = g.timeout;
    WaitFor(g.group->allreduce(tensors, options), g);
    if (op == "avg") {
      // The collective wrote into the tensor outside autograd; the division is part of the
      // same reduction, so it stays outside too (and works on a leaf that requires grad).
      at::NoGradGuard noGrad;
      tensor.div_(static_cast<double>(g.size));
    }
    return info.Env().Undefined();
  });
}

// kd_broadcast(group, tensor, root) — in place: every rank ends with root's values.
KILN_FN(kd_broadcast) {
  GroupBox* box = GroupArg(info);
  return Guarded(info.Env(), RankOf(box), "broadcast", [&]() -> Napi::Value {
    GroupBox& g = LiveGroup(box);
    torch::Tensor& tensor = TensorArg(info, 1);
    const int64_t root = IntArg(info, 2);
    if (root < 0 || root >= g.size) throw std::invalid_argument("root must be in [0, " + std::to_string(g.size) + "), got " + std::to_string(root));
    CheckContiguous(tensor);
    std::vector<at::Tensor> tensors{tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.rootTensor = 0;
    options.timeout = g.timeout;
    WaitFor(g.group->broadcast(tensors, options), g);
    return info.Env().Undefined();
  });
}

// kd_allgather(group, tensor (n, ...)) -> tensor (worldSize * n, ...), slices in rank order.
// One tensor rather than a list because the differentiable all-gather in TypeScript slices
// its gradient back out of exactly this layout. A 0-d tensor gathers to (worldSize,).
// Gloo in 1.13 has no _allgather_base, so the list form writes into views of the result.
KILN_FN(kd_allgather) {
  GroupBox* box = GroupArg(info);
  return Guarded(info.Env(), RankOf(box), "allgather", [&]() -> Napi::Value {
    GroupBox& g = LiveGroup(box);
    // Detached: the result is plain data; the differentiable all-gather lives in TypeScript.
    torch::Tensor input = TensorArg(info, 1).detach();
    if (input.dim() == 0) input = input.reshape({1});
    const int64_t rows = input.size(0);
    std::vector<int64_t> shape = input.sizes().vec();
    shape[0] = rows * g.size;
    torch::Tensor output = torch::empty(shape, input.options());
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int r = 0; r < g.size; ++r) outputs[0].push_back(output.narrow(0, r * rows, rows));
    std::vector<at::Tensor> inputs{input.contiguous()};
    c10d::AllgatherOptions options;
    options.timeout = g.timeout;
    WaitFor(g.group->allgather(outputs, inputs, options), g);
    return Wrap(info.Env(), output);
  });
}

// kd_barrier(group) — returns once every rank has called it.
KILN_FN(kd_barrier) {
  GroupBox* box = GroupArg(info);
  return Guarded(info.Env(), RankOf(box), "barrier", [&]() -> Napi::Value {
    GroupBox& g = LiveGroup(box);
    c10d::BarrierOptions options;
    options.timeout = g.timeout;
    WaitFor(g.group->barrier(options), g);
    return info.Env().Undefined();
  });
}

KILN_FN(kd_rank) { return Napi::Number::New(info.Env(), LiveGroup(GroupArg(info)).rank); }
KILN_FN(kd_size) { return Napi::Number::New(info.Env(), LiveGroup(GroupArg(info)).size); }

// kd_free(group): closes the Gloo connections (joining Gloo's worker threads) and drops this
// rank's reference to the store now; on rank 0 that stops the TCPStore server. Safe twice.
KILN_FN(kd_free) {
  GroupBox* box = GroupArg(info);
  return Guarded(info.Env(), RankOf(box), "dispose", [&]() -> Napi::Value {
    if (box == nullptr) throw std::invalid_argument("argument 0: expected a process group handle");
    box->group.reset();
    box->store.reset();
    return info.Env().Undefined();
  });
}

}  // namespace kiln

#else  // !KILN_WITH_GLOO

// A libtorch without Gloo's headers (a pytorch.org libtorch, or Debian's without libgloo-dev):
// the addon builds, and every collective says what is missing instead of failing to load.
namespace kiln {
#define KILN_NO_GLOO(name)                                                                             \
  KILN_FN(name) {                                                                                     \
    throw Napi::Error::New(info.Env(), "this Kiln addon was built without Gloo (c10d's ProcessGroupGloo.hpp or Gloo's headers were " \
                                       "not found): install libgloo-dev (Debian) and rebuild with `npm run build`");              \
  }
KILN_NO_GLOO(kd_create_tcp)
KILN_NO_GLOO(kd_create_file)
KILN_NO_GLOO(kd_allreduce)
KILN_NO_GLOO(kd_broadcast)
KILN_NO_GLOO(kd_allgather)
KILN_NO_GLOO(kd_barrier)
KILN_NO_GLOO(kd_rank)
KILN_NO_GLOO(kd_size)
KILN_NO_GLOO(kd_free)
#undef KILN_NO_GLOO
}  // namespace kiln

#endif  // KILN_WITH_GLOO
