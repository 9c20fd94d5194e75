#include "pacer/pacer.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace rtcroom::pacer {
namespace {

constexpr std::int64_t kMicroBitsPerByte = 8'000'000;
// A backlog already past its queue time limit is not drained instantly: it gets this long.
constexpr std::int64_t kMinTimeLeftUs = 1'000;

std::int64_t CeilDiv(std::int64_t a, std::int64_t b) { return a / b + (a % b != 0); }

}  // namespace

std::int64_t Pacer::PacedRate(std::int64_t target_bps, double factor) {
    if (target_bps < 1) {
        throw std::invalid_argument("target bitrate must be at least 1 bps, got " +
                                    std::to_string(target_bps));
    }
    // Truncation, not rounding, so the Python twin gets the same integer from the same double.
    double rate = static_cast<double>(target_bps) * factor;
    if (!(rate >= 1.0) || rate > static_cast<double>(kMaxRateBps)) {
        throw std::invalid_argument("pacing rate (target bitrate x pacing factor) must be 1 bps to "
                                    "1 Tbps, got " + std::to_string(rate));
    }
    return static_cast<std::int64_t>(rate);
}

Pacer::Pacer(std::int64_t target_bitrate_bps, std::int64_t now_us, Config config)
    : config_(config),
      target_bps_(target_bitrate_bps),
      paced_bps_(PacedRate(target_bitrate_bps, config.pacing_factor)),
      rate_bps_(paced_bps_),
      last_us_(now_us) {
    if (config_.burst_us < 0 || config_.burst_us > 1'000'000) {
        throw std::invalid_argument("burst interval must be 0 to 1 s, got " +
                                    std::to_string(config_.burst_us) + " us");
    }
    if (config_.queue_time_limit_us < 0) {
        throw std::invalid_argument("queue time limit must not be negative, got " +
                                    std::to_string(config_.queue_time_limit_us) + " us");
    }
    for (std::size_t limit : config_.max_packets) {
        if (limit == 0) throw std::invalid_argument("queue limits must be at least 1 packet");
    }
}

void Pacer::UpdateRate() {
    rate_bps_ = paced_bps_;
    if (config_.queue_time_limit_us == 0 || queued_packets_ == 0) return;
    std::int64_t oldest = kNever;
    for (const auto &queue : queues_) {
        if (!queue.empty()) oldest = std::min(oldest, queue.front().enqueued_us);
    }
    // Up to the oldest packet's deadline the backlog drains by it, however close it is; only a
    // deadline already missed gets the floor, instead of a rate without bound.
    std::int64_t time_left = oldest + config_.queue_time_limit_us - last_us_;
    if (time_left <= 0) time_left = kMinTimeLeftUs;
    std::int64_t backlog = static_cast<std::int64_t>(queued_bytes_) * kMicroBitsPerByte + debt_;
    rate_bps_ = std::min(std::max(paced_bps_, CeilDiv(backlog, time_left)), kMaxRateBps);
}

void Pacer::Drain(std::int64_t now_us) {
    if (now_us <= last_us_) return;
    std::int64_t elapsed = now_us - last_us_;
    last_us_ = now_us;
    std::int64_t rate = rate_bps_;
    // Compare by division first: rate x elapsed overflows after a few hours idle at high rates.
    if (elapsed >= CeilDiv(debt_, rate)) {
        debt_ = 0;
    } else {
        debt_ -= rate * elapsed;
    }
}

void Pacer::SetTargetBitrate(std::int64_t target_bitrate_bps, std::int64_t now_us) {
    std::int64_t paced = PacedRate(target_bitrate_bps, config_.pacing_factor);
    Drain(now_us);
    target_bps_ = target_bitrate_bps;
    paced_bps_ = paced;
    UpdateRate();
}

bool Pacer::Enqueue(std::string data, PacketClass packet_class, std::int64_t now_us) {
    std::size_t size = data.size();
    return Admit(std::move(data), size, packet_class, now_us);
}

bool Pacer::EnqueueSize(std::size_t size, PacketClass packet_class, std::int64_t now_us) {
    return Admit(std::string(), size, packet_class, now_us);
}

std::size_t Pacer::EnqueueSizes(const std::size_t *sizes, std::size_t n,
                                PacketClass packet_class, std::int64_t now_us) {
    // One drain and one rate update for the lot: the clock stands still in between, so the
    // rates the single calls would set on the way are never used.
    Drain(now_us);
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < n; ++i) dropped += Push(std::string(), sizes[i], packet_class);
    UpdateRate();
    return dropped;
}

bool Pacer::Admit(std::string data, std::size_t size, PacketClass packet_class,
                  std::int64_t now_us) {
    Drain(now_us);
    bool dropped = Push(std::move(data), size, packet_class);
    UpdateRate();
    return dropped;
}

bool Pacer::Push(std::string data, std::size_t size, PacketClass packet_class) {
    auto &queue = queues_[Index(packet_class)];
    bool dropped = false;
    if (queue.size() >= config_.max_packets[Index(packet_class)]) {
        queued_bytes_ -= queue.front().size;
        queue.pop_front();
        ++dropped_[Index(packet_class)];
        dropped = true;
    } else {
        ++queued_packets_;
    }
    queued_bytes_ += size;
    queue.push_back(Queued{std::move(data), size, last_us_});
    return dropped;
}

bool Pacer::SendNow(std::size_t size, std::int64_t now_us) {
    if (queued_packets_ != 0) return false;
    Drain(now_us);
    // With nothing queued the rate is the paced one: the same test as NextSendTime's.
    if (debt_ > rate_bps_ * config_.burst_us) return false;
    debt_ += static_cast<std::int64_t>(size) * kMicroBitsPerByte;
    return true;
}

std::int64_t Pacer::NextSendTime() const {
    if (queued_packets_ == 0) return kNever;
    std::int64_t excess = debt_ - rate_bps_ * config_.burst_us;
    if (excess <= 0) return last_us_;
    return last_us_ + CeilDiv(excess, rate_bps_);
}

std::optional<Released> Pacer::Pop(std::int64_t now_us) {
    std::int64_t due = NextSendTime();
    if (due == kNever || due > std::max(now_us, last_us_)) return std::nullopt;
    // The clock advances to the scheduled time only, not to `now_us`: the next packet's slot
    // follows from this one's, however late or early the caller is.
    Drain(due);
    for (int c = 0; c < kNumClasses; ++c) {
        auto &queue = queues_[static_cast<std::size_t>(c)];
        if (queue.empty()) continue;
        Released out{std::move(queue.front().data), queue.front().size,
                     static_cast<PacketClass>(c), due};
        queue.pop_front();
        --queued_packets_;
        queued_bytes_ -= out.size;
        debt_ += static_cast<std::int64_t>(out.size) * kMicroBitsPerByte;
        UpdateRate();
        return out;
    }
    return std::nullopt;  // unreachable: NextSendTime() said something is queued
}

}  // namespace rtcroom::pacer
