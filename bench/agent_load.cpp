// an-agent-load: load and latency tool for the agents' API (agentnetwork.v1.Agent): messages,
// requests and the inbox between two nodes, driven by bench/daan_bench.py. Every mode prints one
// JSON line on stdout (errors included, as {"error": "..."}, with exit code 1); every loop is
// bounded in count and in time.
//
//   an-agent-load send --target T --peer ID --size BYTES --count N --concurrency C --seconds S
//                      [--deadline-ms D] [--token X]
//       C threads on one channel (one agent with C calls in flight) call SendMessage back to
//       back until N calls in all were made or S seconds passed. A call returns once the peer
//       node has stored the message. Before the clock starts each thread has had one call
//       succeed (a warm-up message, delivered too: "warmup_calls"). With BYTES >= 8 a payload
//       starts with its sequence number (8 bytes, little-endian), so that the receiver can count
//       distinct messages. {"calls", "errors": {CODE: n}, "calls_per_s", "latency_us": {p50, p90,
//       p99, max}, "start_unix_ns", "end_unix_ns", ...}
//   an-agent-load receive --target T --count N --seconds S [--ack-batch K] [--idle-ms I]
//                         [--size BYTES]
//       One ReceiveMessages stream from the start of the inbox, read until N messages came, S
//       seconds passed, or I ms (default 3000) passed without a message once one came. A second
//       thread acknowledges them (AckMessages) K at a time (default 100), and what is left at the
//       end. "first_unix_ns" / "last_unix_ns": when the first and the last message were read, so
//       that a driver can time delivery from the sender's start; "inbox_wait_ms": how long
//       messages had been stored when they were read; "distinct": distinct sequence numbers
//       (with --size BYTES >= 8), "wrong_size": payloads of another size than --size.
//   an-agent-load serve --target T --seconds S [--count N]
//       One ServeRequests stream answering every request with its own payload (echo), until
//       stdin closes, S seconds pass or N requests were answered. {"answered", "ended_by", ...}
//   an-agent-load request --target T --peer ID --size BYTES --count N --concurrency C
//                         --seconds S [--timeout-ms T] [--ready-ms R]
//       C threads on one channel call SendRequest back to back, N calls in all or S seconds; an
//       answer must be the payload echoed. "latency_us": the whole call seen by this client;
//       "rtt_us": the round trip the node measured on /daan/request/1.0.0. Before the clock
//       starts each thread has had one echoed answer, retried for R ms (default 10000) while
//       the peer answers with an error: its agent may not be serving yet.
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "agentnetwork/v1/agent.grpc.pb.h"
#include "load_support.h"

namespace {

namespace v1 = agentnetwork::v1;
using an::bench::Clock;
using an::bench::code_name;
using an::bench::cpu_seconds_self;
using an::bench::die;
using an::bench::ErrorTally;
using an::bench::Json;
using an::bench::nanoseconds_since;
using an::bench::percentiles_us;
using an::bench::to_number;

constexpr int kMaxConcurrency = 256;
constexpr double kMaxSeconds = 600;
constexpr std::uint64_t kMaxCount = 10'000'000;
// The API takes payloads up to a 16 MiB frame's worth (about 12 MiB once base64-encoded).
constexpr double kMaxPayloadBytes = 12 * 1024 * 1024;
// As the CLI's client: room for the largest payload and the message around it.
constexpr int kMaxClientMessageBytes = 13 * 1024 * 1024;
// AckMessages takes at most this many IDs per call (the node's kMaxAckIds).
constexpr std::size_t kMaxAckIdsPerCall = 10'000;
// Bytes of the sequence number at the start of each payload.
constexpr std::size_t kSequenceBytes = 8;
// How often the watchers of `receive` and `serve` look at the clock and stdin.
constexpr auto kWatchInterval = std::chrono::milliseconds(5);
constexpr int kStdinPollMs = 100;

struct Options {
  std::string mode;
  std::string target;
  std::string token;
  std::string peer;
  std::size_t size = 1024;
  bool size_given = false;
  std::uint64_t count = 1000;  // serve: kMaxCount unless given
  bool count_given = false;
  int concurrency = 1;
  double seconds = 10;
  int deadline_ms = 15'000;
  int timeout_ms = 10'000;
  int ready_ms = 10'000;
  std::size_t ack_batch = 100;
  int idle_ms = 3000;
};

Options parse(int argc, char** argv) {
  if (argc < 2) die("usage: an-agent-load send|receive|serve|request [options]");
  Options options;
  options.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string name = argv[i];
    if (name.rfind("--", 0) != 0 || i + 1 >= argc) die("expected --option VALUE at " + name);
    name = name.substr(2);
    std::string value = argv[++i];
    if (name == "target") {
      options.target = value;
    } else if (name == "token") {
      options.token = value;
    } else if (name == "peer") {
      options.peer = value;
    } else if (name == "size") {
      options.size = static_cast<std::size_t>(to_number(name, value, 0, kMaxPayloadBytes));
      options.size_given = true;
    } else if (name == "count") {
      options.count = static_cast<std::uint64_t>(to_number(name, value, 1, kMaxCount));
      options.count_given = true;
    } else if (name == "concurrency") {
      options.concurrency = static_cast<int>(to_number(name, value, 1, kMaxConcurrency));
    } else if (name == "seconds") {
      options.seconds = to_number(name, value, 0.1, kMaxSeconds);
    } else if (name == "deadline-ms") {
      options.deadline_ms = static_cast<int>(to_number(name, value, 1, 60'000));
    } else if (name == "timeout-ms") {
      options.timeout_ms = static_cast<int>(to_number(name, value, 1, 30'000));
    } else if (name == "ready-ms") {
      options.ready_ms = static_cast<int>(to_number(name, value, 0, 60'000));
    } else if (name == "ack-batch") {
      options.ack_batch = static_cast<std::size_t>(to_number(name, value, 1, kMaxAckIdsPerCall));
    } else if (name == "idle-ms") {
      options.idle_ms = static_cast<int>(to_number(name, value, 1, 600'000));
    } else {
      die("unknown option --" + name);
    }
  }
  if (options.mode == "serve" && !options.count_given) options.count = kMaxCount;
  return options;
}

std::shared_ptr<grpc::Channel> open_channel(const std::string& target) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxClientMessageBytes);
  arguments.SetMaxSendMessageSize(kMaxClientMessageBytes);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
}

void authorize(grpc::ClientContext& context, const Options& options) {
  if (!options.token.empty()) context.AddMetadata("authorization", "Bearer " + options.token);
}

void prepare(grpc::ClientContext& context, const Options& options, int deadline_ms) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  authorize(context, options);
}

std::int64_t unix_ns_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t unix_ms_now() {
  return unix_ns_now() / 1'000'000;
}

Clock::time_point after_seconds(Clock::time_point from, double seconds) {
  return from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string random_payload(std::size_t size, std::uint32_t seed) {
  std::mt19937 random(seed);
  std::string payload(size, '\0');
  for (auto& byte : payload)
    byte = static_cast<char>(random());
  return payload;
}

void stamp_sequence(std::string& payload, std::uint64_t sequence) {
  if (payload.size() < kSequenceBytes) return;
  for (std::size_t i = 0; i < kSequenceBytes; ++i)
    payload[i] = static_cast<char>((sequence >> (8 * i)) & 0xff);
}

std::uint64_t read_sequence(const std::string& payload) {
  std::uint64_t sequence = 0;
  for (std::size_t i = 0; i < kSequenceBytes; ++i)
    sequence |= static_cast<std::uint64_t>(static_cast<unsigned char>(payload[i])) << (8 * i);
  return sequence;
}

// Stops when stdin reaches its end (or fails), or when told to: a thread for tools that run
// until their driver closes the pipe.
class StdinWatch {
 public:
  explicit StdinWatch(std::function<void()> on_close)
      : thread_([this, on_close = std::move(on_close)] {
          char sink[256];
          while (!stop_.load()) {
            pollfd input{STDIN_FILENO, POLLIN, 0};
            int ready = ::poll(&input, 1, kStdinPollMs);
            if (ready < 0 && errno != EINTR) break;
            if (ready > 0 && ::read(STDIN_FILENO, sink, sizeof sink) <= 0) {
              closed_.store(true);
              on_close();
              return;
            }
          }
        }) {}
  ~StdinWatch() {
    stop_.store(true);
    thread_.join();
  }
  StdinWatch(const StdinWatch&) = delete;
  StdinWatch& operator=(const StdinWatch&) = delete;
  bool closed() const { return closed_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};
  std::thread thread_;
};

// ---- send and request: C threads, N calls -----------------------------------------------------

struct CallOutcome {
  grpc::Status status;
  std::int64_t node_rtt_ns = -1;  // request: the round trip the node measured
  bool error_answer = false;      // request: the peer answered with an error
  bool mismatched = false;        // request: the answer is not the payload echoed
  std::string answer_text;        // the error answer's text
};

struct ThreadResult {
  std::uint64_t calls = 0;
  ErrorTally errors;
  std::uint64_t error_answers = 0;
  std::uint64_t mismatched = 0;
  std::string first_error_answer;
  std::vector<std::int64_t> latency_ns;
  std::vector<std::int64_t> node_rtt_ns;
  std::uint64_t warmup_calls = 0;
  std::string warmup_error;
};

// One call with the given sequence number; `payload` is this thread's buffer.
using CallFunction = std::function<CallOutcome(std::string& payload, std::uint64_t sequence)>;

bool succeeded(const CallOutcome& outcome) {
  return outcome.status.ok() && !outcome.error_answer && !outcome.mismatched;
}

std::string describe(const CallOutcome& outcome) {
  if (!outcome.status.ok()) {
    return code_name(outcome.status.error_code()) + ": " + outcome.status.error_message();
  }
  if (outcome.error_answer) return "error answer: " + outcome.answer_text;
  return "the answer is not the payload";
}

// Runs `call` on options.concurrency threads: a warm-up call each (retried for ready_ms), then
// options.count calls in all or options.seconds, whichever ends first. Prints the JSON line.
int drive_calls(const Options& options, const std::string& mode, const CallFunction& call) {
  const int threads_wanted = options.concurrency;
  std::vector<ThreadResult> results(static_cast<std::size_t>(threads_wanted));
  std::atomic<std::uint64_t> next_sequence{0};
  std::atomic<std::uint64_t> claimed{0};
  std::atomic<int> prepared{0};
  std::atomic<bool> go{false};
  std::atomic<bool> abort{false};
  std::atomic<std::int64_t> end_ns{0};  // steady clock, set before `go`
  std::vector<std::thread> threads;
  threads.reserve(results.size());
  for (int i = 0; i < threads_wanted; ++i) {
    threads.emplace_back([&, i] {
      auto& result = results[static_cast<std::size_t>(i)];
      std::string payload = random_payload(options.size, static_cast<std::uint32_t>(i + 1));
      const auto ready_by = Clock::now() + std::chrono::milliseconds(options.ready_ms);
      for (;;) {
        auto outcome = call(payload, next_sequence.fetch_add(1));
        ++result.warmup_calls;
        if (succeeded(outcome)) break;
        if (Clock::now() >= ready_by || abort.load()) {
          result.warmup_error = describe(outcome);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      prepared.fetch_add(1);
      while (!go.load() && !abort.load())
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      if (abort.load() || !result.warmup_error.empty()) return;
      const Clock::time_point end{Clock::duration(end_ns.load())};
      result.latency_ns.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(
          options.count / static_cast<std::uint64_t>(threads_wanted) + 1, 1 << 16)));
      while (Clock::now() < end && claimed.fetch_add(1) < options.count) {
        auto begin = Clock::now();
        auto outcome = call(payload, next_sequence.fetch_add(1));
        auto elapsed = nanoseconds_since(begin);
        if (!outcome.status.ok()) {
          result.errors.add(outcome.status);
          continue;
        }
        ++result.calls;
        result.latency_ns.push_back(elapsed);
        if (outcome.node_rtt_ns >= 0) result.node_rtt_ns.push_back(outcome.node_rtt_ns);
        if (outcome.error_answer && result.error_answers++ == 0) {
          result.first_error_answer = outcome.answer_text;
        }
        if (outcome.mismatched) ++result.mismatched;
      }
    });
  }
  // Every thread made its warm-up call (bounded: each call has a deadline, retries ready_ms).
  while (prepared.load() < threads_wanted)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (const auto& result : results) {
    if (!result.warmup_error.empty()) {
      abort.store(true);
      for (auto& thread : threads)
        thread.join();
      die("a warm-up call failed: " + result.warmup_error);
    }
  }
  const double cpu_before = cpu_seconds_self();
  const auto begin = Clock::now();
  const auto start_unix_ns = unix_ns_now();
  end_ns.store(after_seconds(begin, options.seconds).time_since_epoch().count());
  go.store(true);
  for (auto& thread : threads)
    thread.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  const auto end_unix_ns = unix_ns_now();
  const double cpu = cpu_seconds_self() - cpu_before;

  std::uint64_t calls = 0;
  std::uint64_t error_answers = 0;
  std::uint64_t mismatched = 0;
  std::uint64_t warmup_calls = 0;
  std::string first_error_answer;
  ErrorTally errors;
  std::vector<std::int64_t> latency;
  std::vector<std::int64_t> node_rtt;
  for (auto& result : results) {
    calls += result.calls;
    error_answers += result.error_answers;
    mismatched += result.mismatched;
    warmup_calls += result.warmup_calls;
    if (first_error_answer.empty()) first_error_answer = result.first_error_answer;
    errors.merge(result.errors);
    latency.insert(latency.end(), result.latency_ns.begin(), result.latency_ns.end());
    node_rtt.insert(node_rtt.end(), result.node_rtt_ns.begin(), result.node_rtt_ns.end());
  }
  Json out;
  out["mode"] = mode;
  out["size"] = options.size;
  out["concurrency"] = threads_wanted;
  out["seconds"] = elapsed;
  out["calls"] = calls;
  out["errors_total"] = errors.total;
  out["errors"] = errors.counts_json();
  out["error_messages"] = errors.messages_json();
  if (mode == "request") {
    out["error_answers"] = error_answers;
    out["first_error_answer"] = first_error_answer;
    out["mismatched"] = mismatched;
  }
  out["calls_per_s"] = static_cast<double>(calls) / elapsed;
  out["latency_us"] = percentiles_us(std::move(latency));
  if (mode == "request") out["rtt_us"] = percentiles_us(std::move(node_rtt));
  out["warmup_calls"] = warmup_calls;
  out["start_unix_ns"] = start_unix_ns;
  out["end_unix_ns"] = end_unix_ns;
  out["client_cpu_s"] = cpu;
  out["capped_by_count"] = calls + errors.total >= options.count;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int run_send(const Options& options) {
  if (options.target.empty() || options.peer.empty()) die("send needs --target and --peer");
  auto stub = v1::Agent::NewStub(open_channel(options.target));
  return drive_calls(options, "send", [&](std::string& payload, std::uint64_t sequence) {
    stamp_sequence(payload, sequence);
    grpc::ClientContext context;
    prepare(context, options, options.deadline_ms);
    v1::SendMessageRequest request;
    request.set_peer(options.peer);
    request.set_payload(payload);
    v1::SendMessageResponse response;
    CallOutcome outcome;
    outcome.status = stub->SendMessage(&context, request, &response);
    return outcome;
  });
}

int run_request(const Options& options) {
  if (options.target.empty() || options.peer.empty()) die("request needs --target and --peer");
  auto stub = v1::Agent::NewStub(open_channel(options.target));
  return drive_calls(options, "request", [&](std::string& payload, std::uint64_t sequence) {
    stamp_sequence(payload, sequence);
    grpc::ClientContext context;
    // The node gives up at timeout_ms (plus a dial); the client a little later.
    prepare(context, options, options.timeout_ms + options.deadline_ms);
    v1::SendRequestRequest request;
    request.set_peer(options.peer);
    request.set_payload(payload);
    request.set_timeout_ms(static_cast<std::uint32_t>(options.timeout_ms));
    v1::SendRequestResponse response;
    CallOutcome outcome;
    outcome.status = stub->SendRequest(&context, request, &response);
    if (outcome.status.ok()) {
      outcome.node_rtt_ns = response.rtt_ns();
      outcome.error_answer = response.error();
      if (outcome.error_answer) {
        outcome.answer_text = response.payload();
      } else {
        outcome.mismatched = response.payload() != payload;
      }
    }
    return outcome;
  });
}

// ---- receive ---------------------------------------------------------------------------------

// Acknowledges message IDs on its own thread, `batch` at a time, so that the stream is read
// without waiting for the inbox's deletes.
class Acker {
 public:
  Acker(v1::Agent::Stub& stub, const Options& options)
      : stub_(stub), options_(options), thread_([this] { loop(); }) {}
  ~Acker() { finish(); }
  Acker(const Acker&) = delete;
  Acker& operator=(const Acker&) = delete;

  void add(std::int64_t id) {
    bool full = false;
    {
      std::lock_guard lock(mutex_);
      pending_.push_back(id);
      full = pending_.size() >= options_.ack_batch;
    }
    if (full) wake_.notify_one();
  }

  // Acknowledges what is left and stops.
  void finish() {
    {
      std::lock_guard lock(mutex_);
      if (finishing_) return;
      finishing_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  std::uint64_t acked() const { return acked_; }
  std::uint64_t calls() const { return calls_; }
  const ErrorTally& errors() const { return errors_; }

 private:
  void loop() {
    for (;;) {
      std::vector<std::int64_t> ids;
      bool last = false;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return finishing_ || pending_.size() >= options_.ack_batch; });
        ids.swap(pending_);
        last = finishing_;
      }
      for (std::size_t at = 0; at < ids.size(); at += kMaxAckIdsPerCall) {
        const auto end = std::min(ids.size(), at + kMaxAckIdsPerCall);
        grpc::ClientContext context;
        prepare(context, options_, options_.deadline_ms);
        v1::AckMessagesRequest request;
        for (auto i = at; i < end; ++i)
          request.add_ids(ids[i]);
        v1::AckMessagesResponse response;
        auto status = stub_.AckMessages(&context, request, &response);
        ++calls_;
        if (status.ok()) {
          acked_ += response.removed();
        } else {
          errors_.add(status);
        }
      }
      if (last) return;
    }
  }

  v1::Agent::Stub& stub_;
  const Options& options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::int64_t> pending_;
  bool finishing_ = false;
  // Written by the acker's thread only, read after finish().
  std::uint64_t acked_ = 0;
  std::uint64_t calls_ = 0;
  ErrorTally errors_;
  std::thread thread_;
};

int run_receive(const Options& options) {
  if (options.target.empty()) die("receive needs --target");
  auto stub = v1::Agent::NewStub(open_channel(options.target));
  grpc::ClientContext context;
  authorize(context, options);
  const auto begin = Clock::now();
  const auto end = after_seconds(begin, options.seconds);
  const auto open_unix_ns = unix_ns_now();
  v1::ReceiveMessagesRequest request;
  request.set_after_id(0);
  auto reader = stub->ReceiveMessages(&context, request);

  // The stream is cancelled when time is up or no message came for idle_ms after the first.
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::int64_t> last_read_ns{0};  // steady clock
  std::atomic<bool> reading_done{false};
  std::atomic<int> stopped_by{0};  // 0: count or the stream's end, 1: seconds, 2: idle
  std::thread watch([&] {
    while (!reading_done.load()) {
      std::this_thread::sleep_for(kWatchInterval);
      const auto now = Clock::now();
      const Clock::time_point last{Clock::duration(last_read_ns.load())};
      int reason = 0;
      if (now >= end) {
        reason = 1;
      } else if (received.load() > 0 && now - last >= std::chrono::milliseconds(options.idle_ms)) {
        reason = 2;
      }
      if (reason != 0) {
        stopped_by.store(reason);
        context.TryCancel();
        return;
      }
    }
  });

  Acker acker(*stub, options);
  const bool check_sequence = options.size_given && options.size >= kSequenceBytes;
  std::unordered_set<std::uint64_t> sequences;
  std::uint64_t wrong_size = 0;
  std::uint64_t out_of_order = 0;
  std::int64_t previous_id = 0;
  std::int64_t first_unix_ns = 0;
  std::int64_t last_unix_ns = 0;
  std::vector<std::int64_t> inbox_wait_ns;
  inbox_wait_ns.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(options.count, 1 << 20)));
  v1::InboxMessage message;
  std::uint64_t count = 0;
  while (count < options.count && reader->Read(&message)) {
    const auto now_unix_ns = unix_ns_now();
    last_read_ns.store(Clock::now().time_since_epoch().count());
    if (count == 0) first_unix_ns = now_unix_ns;
    last_unix_ns = now_unix_ns;
    received.store(++count);
    acker.add(message.id());
    if (message.id() <= previous_id) ++out_of_order;
    previous_id = message.id();
    if (options.size_given && message.payload().size() != options.size) ++wrong_size;
    if (check_sequence && message.payload().size() >= kSequenceBytes) {
      sequences.insert(read_sequence(message.payload()));
    }
    inbox_wait_ns.push_back((unix_ms_now() - message.received_at_unix_ms()) * 1'000'000);
  }
  reading_done.store(true);
  watch.join();
  const bool complete = count >= options.count;
  if (complete) context.TryCancel();  // the stream would go on: the inbox has no end
  const auto status = reader->Finish();
  acker.finish();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  const char* reasons[] = {complete ? "count" : "stream", "seconds", "idle"};

  Json out;
  out["mode"] = "receive";
  out["messages"] = count;
  out["complete"] = complete;
  out["stopped_by"] = reasons[stopped_by.load()];
  // CANCELLED when this tool ended the stream (count, seconds, idle).
  out["stream_status"] = code_name(status.error_code());
  out["stream_error"] = status.error_message();
  out["distinct"] = check_sequence ? Json(sequences.size()) : Json(nullptr);
  out["wrong_size"] = wrong_size;
  out["out_of_order"] = out_of_order;
  out["acked"] = acker.acked();
  out["ack_calls"] = acker.calls();
  out["ack_errors"] = acker.errors().total;
  out["ack_error_messages"] = acker.errors().messages_json();
  out["open_unix_ns"] = open_unix_ns;
  out["first_unix_ns"] = count > 0 ? Json(first_unix_ns) : Json(nullptr);
  out["last_unix_ns"] = count > 0 ? Json(last_unix_ns) : Json(nullptr);
  out["seconds"] = elapsed;
  // From the first message read to the last: the rate at which this agent took them.
  const double span = static_cast<double>(last_unix_ns - first_unix_ns) / 1e9;
  out["messages_per_s"] =
      count > 1 && span > 0 ? Json(static_cast<double>(count - 1) / span) : Json(nullptr);
  Json wait = percentiles_us(std::move(inbox_wait_ns));
  if (!wait.is_null()) {
    for (auto& [key, value] : wait.items())
      value = value.get<double>() / 1000.0;
  }
  out["inbox_wait_ms"] = wait;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- serve -----------------------------------------------------------------------------------

int run_serve(const Options& options) {
  if (options.target.empty()) die("serve needs --target");
  auto stub = v1::Agent::NewStub(open_channel(options.target));
  grpc::ClientContext context;
  authorize(context, options);
  const auto begin = Clock::now();
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(
                           std::chrono::duration<double>(options.seconds)));
  auto stream = stub->ServeRequests(&context);
  StdinWatch stdin_watch([&context] { context.TryCancel(); });
  v1::IncomingRequest incoming;
  v1::RequestAnswer answer;
  std::uint64_t answered = 0;
  std::uint64_t bytes = 0;
  bool write_failed = false;
  while (answered < options.count && stream->Read(&incoming)) {
    answer.set_request_id(incoming.request_id());
    answer.set_payload(incoming.payload());
    answer.set_error(false);
    if (!stream->Write(answer)) {
      write_failed = true;
      break;
    }
    ++answered;
    bytes += incoming.payload().size();
  }
  const bool by_count = answered >= options.count;
  if (by_count) context.TryCancel();
  const auto status = stream->Finish();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  std::string ended_by = "stream";
  if (by_count) {
    ended_by = "count";
  } else if (stdin_watch.closed()) {
    ended_by = "stdin";
  } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ended_by = "seconds";
  } else if (write_failed) {
    ended_by = "write failed";
  }
  Json out;
  out["mode"] = "serve";
  out["answered"] = answered;
  out["payload_bytes"] = bytes;
  out["seconds"] = elapsed;
  out["ended_by"] = ended_by;
  out["stream_status"] = code_name(status.error_code());
  out["stream_error"] = status.error_message();
  if (ended_by == "stream" || ended_by == "write failed") {
    // The node ended the stream: say why, as one line the driver reads as an error.
    out["error"] =
        "ServeRequests ended: " + code_name(status.error_code()) + ": " + status.error_message();
    std::printf("%s\n", out.dump().c_str());
    return 1;
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  if (options.mode == "send") return run_send(options);
  if (options.mode == "receive") return run_receive(options);
  if (options.mode == "serve") return run_serve(options);
  if (options.mode == "request") return run_request(options);
  die("unknown mode \"" + options.mode + "\" (send, receive, serve, request)");
}
