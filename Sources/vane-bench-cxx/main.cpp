// vane-bench-cxx — the plain grpc++ reference the RPC benchmark compares the Swift stack against.
// It uses grpc++'s callback API directly (no shim), so its figures are what this machine and
// libgrpc++ can do with nothing in between.
//
//   vane-bench-cxx server --address 127.0.0.1:0 --response-bytes N [--ignore-stdin]
//       Answers every method unary-style with an N-byte response. Prints "LISTENING <port>" once
//       ready; exits on SIGTERM/SIGINT or when stdin closes (unless --ignore-stdin).
//   vane-bench-cxx client --target HOST:PORT --method /pkg.Service/Method --request-bytes N
//                         --calls N --concurrency C --warmup W [--timeout-ms T]
//       Runs W warm-up calls, then N measured calls with C in flight; prints one JSON line.

#include <algorithm>
#include <absl/synchronization/mutex.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "vane-bench-cxx: %s\n"
               "usage:\n"
               "  vane-bench-cxx server --address 127.0.0.1:0 --response-bytes N [--ignore-stdin]\n"
               "  vane-bench-cxx client --target 127.0.0.1:PORT --method /pkg.Service/Method\n"
               "                        --request-bytes N --calls N --concurrency C --warmup W\n"
               "                        [--timeout-ms T]\n",
               why);
  std::exit(2);
}

/// "--name value" pairs after the mode; flags without a value map to "1".
std::map<std::string, std::string> ParseFlags(int argc, char** argv, int first) {
  std::map<std::string, std::string> flags;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) Usage(("unexpected argument " + a).c_str());
    std::string name = a.substr(2);
    if (name == "ignore-stdin") {
      flags[name] = "1";
      continue;
    }
    if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
    flags[name] = argv[++i];
  }
  return flags;
}

long long IntFlag(const std::map<std::string, std::string>& f, const std::string& name,
                  long long fallback) {
  auto it = f.find(name);
  if (it == f.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (end == it->second.c_str() || *end != '\0' || v < 0) Usage(("bad value for --" + name).c_str());
  return v;
}

/// A message of exactly `n` bytes that every protobuf message type parses: one length-delimited
/// field numbered 2047 (unknown to the real schema, so it is skipped), filled with 'v'. The Swift
/// side can decode the reply as the method's real response type. n < 3 is rounded up to 3 (0
/// stays an empty message).
std::string FixedMessage(size_t n) {
  if (n == 0) return std::string();
  if (n < 3) n = 3;
  const std::string tag = "\xFA\x7F";  // (2047 << 3) | 2 as a varint
  auto varint = [](size_t v) {
    std::string out;
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
    return out;
  };
  // Find the payload length L with tag + varint(L) + L == n.
  for (size_t len_bytes = 1; len_bytes <= 5; ++len_bytes) {
    if (n < tag.size() + len_bytes) break;
    size_t payload = n - tag.size() - len_bytes;
    std::string len = varint(payload);
    if (len.size() == len_bytes) return tag + len + std::string(payload, 'v');
  }
  return std::string(n, '\0');  // unreachable for sizes this tool is used with
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

// MARK: - Server

/// Reads one request, answers with the fixed response, finishes OK: a unary call in callback form.
class UnaryReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit UnaryReactor(const grpc::Slice& response) : response_(&response, 1) {
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (ok) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
    }
  }
  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class AnyMethodService final : public grpc::CallbackGenericService {
 public:
  explicit AnyMethodService(size_t response_bytes)
      : response_(grpc::Slice(FixedMessage(response_bytes))) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new UnaryReactor(response_);  // shares the slice (refcounted), no copy per call
  }

 private:
  grpc::Slice response_;
};

int RunServer(const std::map<std::string, std::string>& flags) {
  auto address = flags.count("address") ? flags.at("address") : std::string("127.0.0.1:0");
  size_t response_bytes = static_cast<size_t>(IntFlag(flags, "response-bytes", 0));
  bool watch_stdin = flags.count("ignore-stdin") == 0;

  // Block the stop signals in every thread (gRPC's included, hence before it starts any) so the
  // main thread can take them with sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  AnyMethodService service(response_bytes);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "vane-bench-cxx: cannot listen on %s\n", address.c_str());
    return 1;
  }
  std::printf("LISTENING %d\n", port);
  std::fflush(stdout);

  if (watch_stdin) {
    // The parent holds our stdin open; when it goes away (or closes it), so do we.
    std::thread([] {
      char buf[256];
      while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
      }
      kill(getpid(), SIGTERM);
    }).detach();
  }
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  return 0;
}

// MARK: - Client

struct Config {
  std::string method;
  std::string request;
  long long timeout_ms;
};

/// One in-flight slot of the closed loop: issues a call, and on completion records it and issues
/// the next while calls remain.
class Slot {
 public:
  Slot(grpc::GenericStub* stub, const Config* config, std::atomic<long long>* next,
       long long total, std::vector<double>* latencies_us, std::atomic<long long>* errors,
       std::atomic<int>* finished_slots, std::mutex* mu, std::condition_variable* cv)
      : stub_(stub), config_(config), next_(next), total_(total), latencies_us_(latencies_us),
        errors_(errors), finished_slots_(finished_slots), mu_(mu), cv_(cv),
        request_(ToBuffer(config->request)) {}

  void IssueNext() {
    long long index = next_->fetch_add(1);
    if (index >= total_) {
      {
        std::lock_guard<std::mutex> lock(*mu_);
        finished_slots_->fetch_add(1);
      }
      cv_->notify_all();
      return;
    }
    // The finished call's context may still be on the stack that runs our callback, so it is
    // retired now and destroyed one call later rather than right away.
    retired_ = std::move(context_);
    context_ = std::make_unique<grpc::ClientContext>();
    if (config_->timeout_ms > 0) {
      context_->set_deadline(std::chrono::system_clock::now() +
                             std::chrono::milliseconds(config_->timeout_ms));
    }
    response_.Clear();
    started_ = Clock::now();
    stub_->UnaryCall(context_.get(), config_->method, grpc::StubOptions(), &request_, &response_,
                     [this, index](grpc::Status status) {
                       auto elapsed = Clock::now() - started_;
                       (*latencies_us_)[index] =
                           std::chrono::duration<double, std::micro>(elapsed).count();
                       if (!status.ok()) {
                         if (errors_->fetch_add(1) == 0) {
                           std::fprintf(stderr, "vane-bench-cxx: first error: %d %s\n",
                                        status.error_code(), status.error_message().c_str());
                         }
                       }
                       IssueNext();
                     });
  }

 private:
  grpc::GenericStub* stub_;
  const Config* config_;
  std::atomic<long long>* next_;
  long long total_;
  std::vector<double>* latencies_us_;
  std::atomic<long long>* errors_;
  std::atomic<int>* finished_slots_;
  std::mutex* mu_;
  std::condition_variable* cv_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientContext> retired_;
  Clock::time_point started_;
};

struct PhaseResult {
  double seconds = 0;
  std::vector<double> latencies_us;
  long long errors = 0;
};

/// Runs `total` calls with `concurrency` in flight (1: strictly sequential) and waits for all.
PhaseResult RunPhase(grpc::GenericStub* stub, const Config& config, long long total,
                     int concurrency) {
  PhaseResult result;
  result.latencies_us.assign(static_cast<size_t>(total), 0.0);
  if (total == 0) return result;
  std::atomic<long long> next{0};
  std::atomic<long long> errors{0};
  std::atomic<int> finished{0};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < concurrency; ++i) {
    slots.push_back(std::make_unique<Slot>(stub, &config, &next, total, &result.latencies_us,
                                           &errors, &finished, &mu, &cv));
  }
  auto start = Clock::now();
  for (auto& slot : slots) slot->IssueNext();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return finished.load() == concurrency; });
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.errors = errors.load();
  return result;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

int RunClient(const std::map<std::string, std::string>& flags) {
  if (!flags.count("target")) Usage("client needs --target");
  Config config;
  config.method = flags.count("method") ? flags.at("method")
                                        : std::string("/vane.v1.FeatureService/GetServiceInfo");
  config.request = FixedMessage(static_cast<size_t>(IntFlag(flags, "request-bytes", 0)));
  config.timeout_ms = IntFlag(flags, "timeout-ms", 10000);
  long long calls = IntFlag(flags, "calls", 10000);
  long long concurrency = IntFlag(flags, "concurrency", 1);
  long long warmup = IntFlag(flags, "warmup", 1000);
  if (concurrency < 1 || concurrency > 100000) Usage("--concurrency must be 1 or more");

  auto channel = grpc::CreateChannel(flags.at("target"), grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "vane-bench-cxx: cannot connect to %s\n", flags.at("target").c_str());
    return 1;
  }
  grpc::GenericStub stub(channel);

  RunPhase(&stub, config, warmup, static_cast<int>(concurrency));
  // CPU time of this whole process (every gRPC thread) over the timed calls only.
  auto cpu_seconds = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  double cpu_before = cpu_seconds();
  PhaseResult r = RunPhase(&stub, config, calls, static_cast<int>(concurrency));
  double cpu_us_per_call = calls > 0 ? (cpu_seconds() - cpu_before) * 1e6 / calls : 0;

  std::vector<double> sorted = r.latencies_us;
  std::sort(sorted.begin(), sorted.end());
  double cps = r.seconds > 0 ? static_cast<double>(calls) / r.seconds : 0;
  std::printf(
      "{\"calls\":%lld,\"concurrency\":%lld,\"seconds\":%.6f,\"calls_per_second\":%.1f,"
      "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"errors\":%lld,"
      "\"client_cpu_us\":%.2f}\n",
      calls, concurrency, r.seconds, cps, Percentile(sorted, 0.50), Percentile(sorted, 0.90),
      Percentile(sorted, 0.99), r.errors, cpu_us_per_call);
  std::fflush(stdout);
  return r.errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // The same abseil setting the shim makes (Debian's abseil has mutex deadlock detection on),
  // so that both sides of the comparison run grpc++ alike.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc < 2) Usage("missing mode");
  std::string mode = argv[1];
  auto flags = ParseFlags(argc, argv, 2);
  if (mode == "server") return RunServer(flags);
  if (mode == "client") return RunClient(flags);
  Usage(("unknown mode " + mode).c_str());
}
