// A CPU-heavy service on weft, in one file (docs/guide/services.md walks
// through it):
//
//   producers   plain threads standing in for an I/O library's threads:
//               each submits requests at a steady rate (Runtime::spawn);
//   a request   runs under a deadline and can be abandoned by its client
//               (CancelScope with a deadline, and one following a
//               std::stop_token); it fans out into parallel CPU work with
//               parallel_reduce;
//   completion  JoinHandle::then posts each outcome to an inbox and rings
//               an eventfd; an epoll loop in another plain thread reads it,
//               as an I/O loop would. No thread and no worker blocks per
//               request.
//
// It checks itself: every request completes exactly once, and every
// successful answer equals the closed form. Prints throughput and p50/p99
// latency (from submission to the I/O loop seeing the completion).
//
//   ./build/examples/service [--quick] [--requests N] [--producers P]
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <weft/weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class Status { ok, deadline, abandoned, failed };

struct Completion {
  std::uint64_t id;
  Status status;
  std::uint64_t answer;
  Clock::time_point submitted;
};

// The hand-off to the I/O thread: a locked vector plus an eventfd that says
// "look". post() never blocks beyond the short lock, so the fiber that ends
// a request is never held up by the I/O loop.
class Inbox {
 public:
  Inbox() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  }
  ~Inbox() { close(fd_); }
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  int fd() const { return fd_; }

  void post(const Completion& c) {
    {
      std::lock_guard<std::mutex> guard(lock_);
      items_.push_back(c);
    }
    const std::uint64_t one = 1;
    // The counter only says "look"; a full counter (never, in practice)
    // would still leave the fd readable.
    (void)!write(fd_, &one, sizeof one);
  }

  std::vector<Completion> drain() {
    std::uint64_t count;
    (void)!read(fd_, &count, sizeof count);  // resets the counter
    std::lock_guard<std::mutex> guard(lock_);
    return std::exchange(items_, {});
  }

 private:
  int fd_;
  std::mutex lock_;
  std::vector<Completion> items_;
};

// The request's CPU work: sum of (i * i) % 7919 over [0, n), in parallel.
std::uint64_t work(std::uint64_t n) {
  return weft::parallel_reduce(
      std::uint64_t{0}, n, std::uint64_t{0},
      [](std::uint64_t lo, std::uint64_t hi, std::uint64_t acc) {
        for (std::uint64_t i = lo; i < hi; ++i) acc += (i * i) % 7919;
        return acc;
      },
      [](std::uint64_t a, std::uint64_t b) { return a + b; });
}

// The same, serially: the check.
std::uint64_t expected(std::uint64_t n) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < n; ++i) acc += (i * i) % 7919;
  return acc;
}

// Request i's size: mostly small, every 16th large.
std::uint64_t size_of(std::uint64_t id) { return id % 16 == 0 ? 400'000 : 20'000 + (id * 7919) % 30'000; }

struct Options {
  std::size_t requests = 4000;
  std::size_t producers = 4;
  std::chrono::microseconds interval{250};  // between one producer's submissions
  std::chrono::milliseconds deadline{50};
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      o.requests = 400;
    } else if (a == "--requests" && i + 1 < argc) {
      o.requests = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--producers" && i + 1 < argc) {
      o.producers = std::strtoul(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--requests N] [--producers P]\n", argv[0]);
      std::exit(2);
    }
  }
  if (o.producers == 0 || o.requests < o.producers) {
    std::fprintf(stderr, "need at least one producer and one request per producer\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  // Before the runtime, so destroyed after it: the runtime's destructor
  // waits for every task and completion callback, and the last callback's
  // post() may still be writing to the eventfd after the I/O loop has seen
  // its completion (ThreadSanitizer caught the close racing that write
  // when the inbox went first).
  Inbox inbox;
  weft::Runtime rt;

  // The I/O loop: waits on the eventfd with epoll, as a network loop would
  // wait on its sockets, and records each completion.
  std::vector<Completion> seen;
  std::vector<double> latency_us;
  std::thread io([&] {
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = inbox.fd();
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, inbox.fd(), &ev) != 0) {
      std::perror("epoll");
      std::exit(1);
    }
    while (seen.size() < opt.requests) {
      epoll_event out[4];
      const int n = epoll_wait(ep, out, 4, 1000);
      if (n < 0 && errno != EINTR) {
        std::perror("epoll_wait");
        std::exit(1);
      }
      if (n <= 0) continue;
      const auto now = Clock::now();
      for (const Completion& c : inbox.drain()) {
        seen.push_back(c);
        latency_us.push_back(std::chrono::duration<double, std::micro>(now - c.submitted).count());
      }
    }
    close(ep);
  });

  // The producers: each submits its share at a steady rate; every 25th
  // client gives up right after asking (stop_source.request_stop()).
  const auto start = Clock::now();
  std::vector<std::thread> producers;
  for (std::size_t p = 0; p < opt.producers; ++p) {
    producers.emplace_back([&, p] {
      auto next = Clock::now();
      for (std::uint64_t id = p; id < opt.requests; id += opt.producers) {
        std::this_thread::sleep_until(next);
        next += opt.interval;
        std::stop_source client;
        const auto submitted = Clock::now();
        auto handle = rt.spawn([id, stop = client.get_token(), deadline = opt.deadline] {
          weft::CancelScope by_deadline(deadline);
          weft::CancelScope by_client(stop);
          return work(size_of(id));
        });
        handle.then([&inbox, id, submitted, stop = client.get_token()](weft::JoinHandle<std::uint64_t> done) {
          Completion c{id, Status::ok, 0, submitted};
          try {
            c.answer = done.join();
          } catch (const weft::Cancelled&) {
            c.status = stop.stop_requested() ? Status::abandoned : Status::deadline;
          } catch (...) {
            c.status = Status::failed;
          }
          inbox.post(c);
        });
        if (id % 25 == 24) client.request_stop();
      }
    });
  }
  for (auto& t : producers) t.join();
  io.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // Check: each request exactly once, each answer right.
  std::vector<int> times(opt.requests, 0);
  std::size_t ok = 0, deadline = 0, abandoned = 0, failed = 0, wrong = 0;
  for (const Completion& c : seen) {
    ++times[c.id];
    switch (c.status) {
      case Status::ok:
        ++ok;
        if (c.answer != expected(size_of(c.id))) ++wrong;
        break;
      case Status::deadline: ++deadline; break;
      case Status::abandoned: ++abandoned; break;
      case Status::failed: ++failed; break;
    }
  }
  const bool once = std::all_of(times.begin(), times.end(), [](int t) { return t == 1; });
  std::sort(latency_us.begin(), latency_us.end());
  auto pct = [&](double q) { return latency_us[static_cast<std::size_t>(q * (latency_us.size() - 1))]; };

  std::printf("service: %zu requests from %zu producer threads on %zu workers in %.2f s: %.0f requests/s\n",
              opt.requests, opt.producers, rt.num_workers(), seconds, opt.requests / seconds);
  std::printf("  ok %zu, past deadline %zu, abandoned by client %zu, failed %zu\n", ok, deadline, abandoned,
              failed);
  std::printf("  latency (submit to I/O loop): p50 %.0f us, p99 %.0f us, max %.0f us\n", pct(0.50), pct(0.99),
              latency_us.back());
  if (!once || wrong != 0 || failed != 0) {
    std::printf("  CHECK FAILED: every request exactly once: %s; wrong answers: %zu; failures: %zu\n",
                once ? "yes" : "no", wrong, failed);
    return 1;
  }
  std::printf("  check: every request completed exactly once, every answer right\n");
  return 0;
}
