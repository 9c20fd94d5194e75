// Leaky-bucket pacer: decides when queued packets may go out; it never sleeps, reads no clock and
// sends nothing. The caller passes the time in (microseconds on any monotonic clock), asks
// NextSendTime(), waits until then by its own means, and calls Pop() for what is due.
//
// Accounting is in integers so a plain-Python twin can reproduce it exactly: the bucket holds a
// debt in micro-bits (a packet of n bytes adds n * 8e6), which drains at the pacing rate in bits
// per second (one micro-bit per microsecond per bit/s). A packet is due once the debt is at most
// the burst allowance (pacing rate x burst interval). Idle time never builds up credit: the debt
// stops at zero.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>

namespace rtcroom::pacer {

// Release order: every queued audio packet goes before any retransmission, which goes before any
// new video. Within a class, first in first out.
enum class PacketClass : int { kAudio = 0, kRetransmission = 1, kVideo = 2 };
constexpr int kNumClasses = 3;

// NextSendTime() of an empty pacer.
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
// Ceiling on any rate (1 Tbps), which keeps rate x burst interval within 64 bits.
constexpr std::int64_t kMaxRateBps = 1'000'000'000'000;

struct Config {
    // Pacing rate = target bitrate x this factor (libwebrtc's default), so the queue drains
    // faster than the encoder fills it on average and a burst (a keyframe) is spread over
    // about 1 / factor of the time the encoder took to produce it.
    double pacing_factor = 2.5;
    // Debt allowed before a packet must wait, as time at the pacing rate (0 to 1 s). 0 is a
    // strict leaky bucket; libwebrtc allows 40 ms.
    std::int64_t burst_us = 0;
    // No packet should wait longer than this (libwebrtc's queue time limit, 2 s): after every
    // change the rate is raised, if needed, so that the debt and everything queued drain before
    // the oldest queued packet's deadline (at least 1 ms away). 0 turns this off.
    std::int64_t queue_time_limit_us = 2'000'000;
    // Hard bound per class, in packets. A full class drops its oldest packet to admit the new
    // one: the oldest is the most stale (audio past its playout time, video the receiver will
    // recover from with a NACK or keyframe request anyway).
    std::array<std::size_t, kNumClasses> max_packets{100, 500, 3000};
};

struct Released {
    std::string data;  // empty for a packet queued by size only
    std::size_t size;
    PacketClass packet_class;
    // The time the pacer scheduled this packet's release (at most the `now` given to Pop).
    std::int64_t due_us;
};

class Pacer {
public:
    // Throws std::invalid_argument for a target bitrate below 1, a pacing factor that makes the
    // pacing rate below 1 bit/s, a negative burst or queue time limit, or a zero queue limit.
    Pacer(std::int64_t target_bitrate_bps, std::int64_t now_us, Config config = Config());

    // Takes effect from `now_us` on: the debt built so far drains at the old rate until then.
    void SetTargetBitrate(std::int64_t target_bitrate_bps, std::int64_t now_us);

    // Queues a packet; returns true when the class was full and its oldest packet was dropped.
    bool Enqueue(std::string data, PacketClass packet_class, std::int64_t now_us);
    // The same for a caller that keeps the packets itself: the pacer needs only the size, and
    // the order of release within a class is the order of queuing, so the caller can keep one
    // FIFO per class (dropping its oldest when this returns true) and take from the class Pop
    // names.
    bool EnqueueSize(std::size_t size, PacketClass packet_class, std::int64_t now_us);
    // EnqueueSize for each of `n` sizes in turn, all at `now_us` (a frame's packets); returns
    // how many queued packets the class limit dropped to admit them.
    std::size_t EnqueueSizes(const std::size_t *sizes, std::size_t n, PacketClass packet_class,
                             std::int64_t now_us);

    // The fast path of a caller that queues only what must wait: with nothing queued and the
    // debt within the burst allowance at `now_us`, the packet counts as sent now (its bytes go
    // on the debt) and this returns true; otherwise it returns false, nothing is counted, and
    // the caller queues the packet (Enqueue/EnqueueSize) or sends it unpaced. So packets that
    // fit the budget leave at once, and only a burst over it (a keyframe) waits, in order.
    bool SendNow(std::size_t size, std::int64_t now_us);

    // When the next packet is due (possibly already past), or kNever when nothing is queued.
    std::int64_t NextSendTime() const;

    // The highest-priority packet if one is due at `now_us`, else nothing. Repeated calls with the
    // same `now_us` release everything due by then, each with the time it was scheduled for, so
    // a caller that woke late catches up and one that asks a little ahead sends a little early.
    std::optional<Released> Pop(std::int64_t now_us);

    std::int64_t target_bitrate_bps() const { return target_bps_; }
    // The rate packets are released at now: the paced rate, or more to meet the queue time limit.
    std::int64_t pacing_rate_bps() const { return rate_bps_; }
    std::size_t queued_packets(PacketClass c) const { return queues_[Index(c)].size(); }
    std::size_t queued_packets() const { return queued_packets_; }
    std::size_t queued_bytes() const { return queued_bytes_; }
    std::uint64_t dropped_packets(PacketClass c) const { return dropped_[Index(c)]; }
    const Config &config() const { return config_; }

private:
    static std::size_t Index(PacketClass c) { return static_cast<std::size_t>(c); }
    static std::int64_t PacedRate(std::int64_t target_bps, double factor);
    // Moves the clock to `now_us` (never backwards), draining the debt at the current rate.
    void Drain(std::int64_t now_us);
    // Sets the rate held until the next change of state, from the state just reached.
    void UpdateRate();
    bool Admit(std::string data, std::size_t size, PacketClass packet_class, std::int64_t now_us);
    // Queues at the current clock, dropping the class's oldest if full; returns whether it did.
    // The caller drains before and updates the rate after.
    bool Push(std::string data, std::size_t size, PacketClass packet_class);

    struct Queued {
        std::string data;
        std::size_t size;
        std::int64_t enqueued_us;
    };

    Config config_;
    std::int64_t target_bps_;
    std::int64_t paced_bps_;
    std::int64_t rate_bps_;
    std::int64_t last_us_;
    std::int64_t debt_ = 0;  // micro-bits
    std::size_t queued_bytes_ = 0;
    std::size_t queued_packets_ = 0;
    std::array<std::deque<Queued>, kNumClasses> queues_;
    std::array<std::uint64_t, kNumClasses> dropped_{};
};

}  // namespace rtcroom::pacer
