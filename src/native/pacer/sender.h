// Paced sending on a connected UDP socket from one native thread.
//
// asyncio's timers wake at millisecond granularity and each wake-up costs the interpreter several
// microseconds, so at 10k packets/s a Python release loop spends more on waking than on pacing.
// SocketSender keeps the Pacer's decisions and moves the waiting and the sending out of Python
// (the thread never touches Python objects or the GIL; Python only copies packets in, one lock
// per EnqueueMany):
// one thread per sender (not per packet) sleeps on a condition variable, takes everything due
// within a tolerance from the Pacer and hands it to the kernel in one sendmmsg call (Linux, with
// runs of equal-sized packets as UDP GSO datagrams; one send per packet elsewhere).
//
// Wake-ups are the cost that matters (a timed wake-up costs 15 to 35 us of kernel CPU on a
// virtual machine), so a busy sender wakes half the tolerance after the next packet's slot (the
// wake-up's own latency, 50 to 300 us here, takes most of the other half) and releases everything
// due up to the tolerance ahead: each packet leaves within about the tolerance of its slot,
// either way, and one wake-up serves some 1.5 tolerances of slots. A packet arriving at an idle
// sender goes at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pacer/pacer.h"

namespace rtcroom::pacer {

// Microseconds of std::chrono::steady_clock: CLOCK_MONOTONIC on Linux, the clock of Python's
// time.monotonic() and asyncio's loop.time() there.
std::int64_t MonotonicMicros();

// One released packet, logged when the sender was created with `record`.
struct Release {
    std::int64_t due_us;   // when the Pacer scheduled it
    std::int64_t sent_us;  // when its batch went to the kernel
    PacketClass packet_class;
    std::size_t size;
};

// The floors of paced sending on this machine, for benchmarks/pacer_cpu.py.
//
// WakeCpu: a fresh native thread sleeps until each of `count` instants `period_us` apart (absolute
// deadlines, nothing else done) by `method`: "condvar" (a condition variable's wait_until, as
// SocketSender sleeps), "nanosleep" (clock_nanosleep with TIMER_ABSTIME), "timerfd" (a periodic
// timerfd read in blocking mode) or "epoll" (the same timerfd through epoll_wait). `slack_ns` > 0
// sets the thread's timer slack first (PR_SET_TIMERSLACK; Linux's default is 50 us). With `fd`
// >= 0 it also sends `packets` zero packets of `size` bytes on that connected datagram socket at
// each wake-up, as SocketSender sends a batch: a pacer with no queue, no decisions, no locks.
struct WakeCost {
    double cpu_s;          // the thread's CPU time over the loop, kernel included
    double mean_late_us;   // mean time from each deadline to the thread running again
};
WakeCost WakeCpu(std::int64_t period_us, std::int64_t count, const std::string &method,
                 std::int64_t slack_ns, std::intptr_t fd, std::size_t packets, std::size_t size);

// SendCpu: CPU seconds of the calling thread to send `count` packets of `size` zero bytes on the
// connected datagram socket `fd` the way SocketSender does (sendmmsg, runs of equal-sized packets
// as UDP GSO datagrams), `batch` packets per sendmmsg call, unpaced.
double SendCpu(std::intptr_t fd, std::size_t size, std::size_t count, std::size_t batch);

class SocketSender {
public:
    // `fd` must be a connected datagram socket (UDP, or any other kind of datagram socket without
    // the segmentation offload); the sender keeps a duplicate of it (POSIX), so
    // closing the caller's socket does not redirect the thread's sends to a reused descriptor.
    // Throws std::invalid_argument for a bad descriptor, a stream or unconnected socket, a
    // `tolerance_us` outside 0 to 10 ms, or anything the Pacer refuses.
    SocketSender(std::intptr_t fd, std::int64_t target_bitrate_bps, Config config,
                 std::int64_t tolerance_us, bool record);
    ~SocketSender();
    SocketSender(const SocketSender &) = delete;
    SocketSender &operator=(const SocketSender &) = delete;

    void Start();
    // Ends the thread; packets still queued are discarded. Idempotent.
    void Stop();
    bool running() const { return thread_.joinable(); }

    void SetTargetBitrate(std::int64_t target_bitrate_bps);
    // Queues packets of one class at once; returns how many queued packets the class limit
    // dropped to admit them.
    std::size_t EnqueueMany(std::vector<std::string> packets, PacketClass packet_class);

    std::int64_t target_bitrate_bps() const;
    std::int64_t pacing_rate_bps() const;
    std::size_t queued_packets() const;
    std::size_t queued_packets(PacketClass c) const;
    std::size_t queued_bytes() const;
    std::uint64_t dropped_packets(PacketClass c) const;
    std::uint64_t sent_packets() const;
    // Packets the kernel refused (buffer full, destination unreachable): lost, as on the network.
    std::uint64_t send_errors() const;
    // Times the thread woke up and found packets due (each one sendmmsg call).
    std::uint64_t wakeups() const;
    // The releases logged since the last call (empty unless created with `record`).
    std::vector<Release> TakeLog();

private:
    void Run();
    // Sends a batch without the lock (only the thread calls it); returns how many packets the
    // kernel refused.
    std::uint64_t SendBatch(const std::vector<Released> &batch);
    // Wakes the thread if the next packet is now due before the time it sleeps until.
    void NotifyIfSooner();

    std::intptr_t fd_;
    std::int64_t tolerance_us_;
    bool record_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    Pacer pacer_;                   // guarded by mutex_
    std::int64_t wake_at_ = kNever;  // when the thread next looks at the Pacer; guarded by mutex_
    bool stopping_ = false;         // guarded by mutex_
    std::uint64_t sent_ = 0;        // guarded by mutex_
    std::uint64_t errors_ = 0;      // guarded by mutex_
    std::uint64_t wakeups_ = 0;     // guarded by mutex_
    std::vector<Release> log_;      // guarded by mutex_
    bool gso_ = false;  // UDP segmentation offload, while it works; the thread's after start
    std::thread thread_;
};

}  // namespace rtcroom::pacer
