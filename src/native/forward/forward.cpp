#include "forward/forward.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <stdexcept>

#ifndef _WIN32
#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace rtcroom::forward {

namespace {

constexpr double kAbsSendTimeScale = 1 << 18;  // abs-send-time: seconds in 6.18 fixed point
// libsrtp 2's SRTP_MAX_TRAILER_LEN (authentication tag and MKI).
constexpr std::size_t kMaxTrailer = 16 + 128;
constexpr std::size_t kMaxPacket = 4096;

std::uint16_t Read16(const std::uint8_t *p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

std::uint32_t Read32(const std::uint8_t *p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
           (std::uint32_t{p[2]} << 8) | p[3];
}

void Put16(std::string &out, std::uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xFF));
}

void Put32(std::string &out, std::uint32_t v) {
    Put16(out, static_cast<std::uint16_t>(v >> 16));
    Put16(out, static_cast<std::uint16_t>(v & 0xFFFF));
}

bool SeqNewer(std::uint16_t a, std::uint16_t b) {
    return a != b && static_cast<std::uint16_t>(a - b) < 0x8000;
}

void PutAbsSendTime(std::uint8_t *at, double now) {
    auto t = static_cast<std::uint32_t>(static_cast<std::int64_t>(now * kAbsSendTimeScale) &
                                        0xFFFFFF);
    at[0] = static_cast<std::uint8_t>(t >> 16);
    at[1] = static_cast<std::uint8_t>(t >> 8);
    at[2] = static_cast<std::uint8_t>(t);
}

// Where the picture id and TL0PICIDX of a VP8 payload descriptor (RFC 7741) are; 0 for absent.
struct Vp8Fields {
    std::size_t picture_id = 0;  // offset of its first byte
    bool long_picture_id = false;
    std::size_t tl0 = 0;
};

Vp8Fields FindVp8Fields(const std::uint8_t *data, std::size_t start, std::size_t end) {
    Vp8Fields f;
    if (end - start < 2 || !(data[start] & 0x80)) {
        return f;
    }
    std::uint8_t x = data[start + 1];
    std::size_t pos = start + 2;
    if (x & 0x80) {  // I
        if (pos >= end) {
            return f;
        }
        f.long_picture_id = data[pos] & 0x80;
        if (pos + (f.long_picture_id ? 2 : 1) > end) {
            return f;
        }
        f.picture_id = pos;
        pos += f.long_picture_id ? 2 : 1;
    }
    if (x & 0x40 && pos < end) {  // L
        f.tl0 = pos;
    }
    return f;
}

}  // namespace

bool ParseRtp(const std::uint8_t *data, std::size_t size, RtpView &h) {
    if (size < 12 || data[0] >> 6 != 2) {
        return false;
    }
    h.marker = data[1] >> 7;
    h.payload_type = data[1] & 0x7F;
    h.sequence_number = Read16(data + 2);
    h.timestamp = Read32(data + 4);
    h.ssrc = Read32(data + 8);
    std::size_t pos = 12 + 4 * std::size_t{data[0] & 0x0Fu};
    if (pos > size) {
        return false;
    }
    h.csrc_end = pos;
    if (data[0] & 0x10) {
        if (size < pos + 4) {
            return false;
        }
        pos += 4 + 4 * std::size_t{Read16(data + pos + 2)};
        if (size < pos) {
            return false;
        }
    }
    h.payload_offset = pos;
    h.payload_end = size;
    if (data[0] & 0x20) {
        std::size_t padding = data[size - 1];
        if (padding == 0 || padding > size - pos) {
            return false;
        }
        h.payload_end -= padding;
    }
    return true;
}

void WriteExtensions(const Extensions &ext, const std::uint8_t *audio_level,
                     std::size_t audio_level_size, double now, std::string &out) {
    struct Element {
        int id;
        const std::uint8_t *value;
        std::size_t size;
    };
    Element elements[3];
    std::size_t n = 0;
    if (ext.mid_id >= 0 && !ext.mid.empty()) {
        elements[n++] = {ext.mid_id, reinterpret_cast<const std::uint8_t *>(ext.mid.data()),
                         ext.mid.size()};
    }
    if (ext.audio_level_id >= 0 && audio_level != nullptr && audio_level_size == 1) {
        elements[n++] = {ext.audio_level_id, audio_level, 1};
    }
    std::uint8_t abs[3];
    if (ext.abs_send_time_id >= 0) {
        PutAbsSendTime(abs, now);
        elements[n++] = {ext.abs_send_time_id, abs, 3};
    }
    if (n == 0) {
        return;
    }
    bool one_byte = true;
    for (std::size_t i = 0; i < n; ++i) {
        const Element &e = elements[i];
        one_byte = one_byte && e.id > 0 && e.id < 15 && e.size > 0 && e.size <= 16;
    }
    std::size_t start = out.size();
    Put16(out, one_byte ? 0xBEDE : 0x1000);
    Put16(out, 0);  // length, filled in below
    for (std::size_t i = 0; i < n; ++i) {
        const Element &e = elements[i];
        if (one_byte) {
            out.push_back(static_cast<char>((e.id << 4) | (e.size - 1)));
        } else {
            out.push_back(static_cast<char>(e.id));
            out.push_back(static_cast<char>(e.size));
        }
        out.append(reinterpret_cast<const char *>(e.value), e.size);
    }
    while ((out.size() - start) % 4) {
        out.push_back('\0');
    }
    std::size_t words = (out.size() - start - 4) / 4;
    out[start + 2] = static_cast<char>(words >> 8);
    out[start + 3] = static_cast<char>(words & 0xFF);
}

#ifndef _WIN32
Sink::Sink(std::uintptr_t protect, std::uintptr_t session, std::intptr_t fd,
           const std::string &address)
    : protect_(reinterpret_cast<ProtectFunction>(protect)),
      session_(reinterpret_cast<void *>(session)), fd_(-1), address_(address) {
    if (protect == 0 || session == 0) {
        throw std::invalid_argument("an SRTP protect function and session are required");
    }
    if (address.size() != sizeof(sockaddr_in) && address.size() != sizeof(sockaddr_in6)) {
        throw std::invalid_argument("the address must be a sockaddr_in or sockaddr_in6");
    }
    fd_ = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
    if (fd_ < 0) {
        throw std::invalid_argument("cannot duplicate the socket descriptor");
    }
}

Sink::~Sink() {
    if (fd_ >= 0) {
        close(fd_);
    }
}

bool Sink::Transmit(std::string &packet) {
    if (closed_) {
        return false;
    }
    std::size_t size = packet.size();
    packet.resize(size + kMaxTrailer);
    int length = static_cast<int>(size);
    if (protect_(session_, packet.data(), &length) != 0) {
        return false;
    }
    ssize_t sent;
    do {
        sent = sendto(fd_, packet.data(), static_cast<std::size_t>(length), MSG_DONTWAIT,
                      reinterpret_cast<const sockaddr *>(address_.data()),
                      static_cast<socklen_t>(address_.size()));
    } while (sent < 0 && errno == EINTR);
    packet.resize(static_cast<std::size_t>(length));
    return sent >= 0;
}
#else
Sink::Sink(std::uintptr_t, std::uintptr_t, std::intptr_t, const std::string &) {
    throw std::invalid_argument("native sending is not available on Windows");
}
Sink::~Sink() = default;
bool Sink::Transmit(std::string &) { return false; }
#endif

std::size_t FindExtension(const std::uint8_t *data, std::size_t size, int id,
                          std::size_t length) {
    RtpView h;
    if (!ParseRtp(data, size, h) || !(data[0] & 0x10)) {
        return 0;
    }
    const std::size_t profile = Read16(data + h.csrc_end);
    const bool one_byte = profile == 0xBEDE;
    if (!one_byte && (profile & 0xFFF0) != 0x1000) {
        return 0;
    }
    std::size_t p = h.csrc_end + 4;
    const std::size_t end = h.payload_offset;
    while (p < end) {
        if (data[p] == 0) {  // padding
            ++p;
            continue;
        }
        std::size_t element_id, element_length, header;
        if (one_byte) {
            element_id = data[p] >> 4;
            element_length = (data[p] & 0x0F) + 1u;
            header = 1;
            if (element_id == 15) {
                return 0;
            }
        } else {
            if (p + 1 >= end) {
                return 0;
            }
            element_id = data[p];
            element_length = data[p + 1];
            header = 2;
        }
        if (p + header + element_length > end) {
            return 0;
        }
        if (static_cast<int>(element_id) == id) {
            return element_length == length ? p + header : 0;
        }
        p += header + element_length;
    }
    return 0;
}

void Sink::Pace(std::int64_t target_bitrate_bps, std::int64_t now_us, pacer::Config config) {
    pacer_.emplace(target_bitrate_bps, now_us, config);
    for (auto &queue : waiting_) {
        queue.clear();
    }
}

void Sink::SetTargetBitrate(std::int64_t target_bitrate_bps, std::int64_t now_us) {
    if (closed_) {
        return;
    }
    if (!pacer_) {
        throw std::logic_error("the sink does not pace");
    }
    pacer_->SetTargetBitrate(target_bitrate_bps, now_us);
}

Sink::Outcome Sink::Send(std::string &packet, pacer::PacketClass packet_class,
                         std::int64_t now_us, int abs_send_time_id) {
    if (closed_) {
        ++send_errors_;
        return kFailed;
    }
    if (!pacer_ || packet_class == pacer::PacketClass::kAudio ||
        pacer_->SendNow(packet.size(), now_us)) {
        if (!Transmit(packet)) {
            ++send_errors_;
            return kFailed;
        }
        ++sent_packets_;
        return kSent;
    }
    const bool was_empty = pacer_->queued_packets() == 0;
    std::size_t at = abs_send_time_id > 0
        ? FindExtension(reinterpret_cast<const std::uint8_t *>(packet.data()), packet.size(),
                        abs_send_time_id, 3)
        : 0;
    auto &queue = waiting_[static_cast<std::size_t>(packet_class)];
    if (pacer_->EnqueueSize(packet.size(), packet_class, now_us)) {
        queue.pop_front();  // both drop the class's oldest
    }
    queue.push_back(Waiting{std::move(packet), at});
    return was_empty ? kStarted : kQueued;
}

std::int64_t Sink::Drain(std::int64_t now_us) {
    if (!pacer_) {
        return pacer::kNever;
    }
    while (auto released = pacer_->Pop(now_us)) {
        auto &queue = waiting_[static_cast<std::size_t>(released->packet_class)];
        Waiting w = std::move(queue.front());
        queue.pop_front();
        if (w.abs_send_time_at) {
            PutAbsSendTime(reinterpret_cast<std::uint8_t *>(w.packet.data()) + w.abs_send_time_at,
                           static_cast<double>(now_us) / 1e6);
        }
        if (Transmit(w.packet)) {
            ++sent_packets_;
            ++delayed_packets_;
        } else {
            ++send_errors_;
        }
    }
    return pacer_->NextSendTime();
}

void Sink::Close() {
    closed_ = true;
    for (auto &queue : waiting_) {
        queue.clear();
    }
    pacer_.reset();
}

Source::Source(std::uintptr_t unprotect, std::uintptr_t session)
    : unprotect_(reinterpret_cast<UnprotectFunction>(unprotect)),
      session_(reinterpret_cast<void *>(session)) {
    if (unprotect == 0 || session == 0) {
        throw std::invalid_argument("an SRTP unprotect function and session are required");
    }
}

bool Source::Unprotect(const std::uint8_t *data, std::size_t size, std::string &packet) {
    if (size > static_cast<std::size_t>(INT32_MAX)) {
        return false;
    }
    packet.assign(reinterpret_cast<const char *>(data), size);
    int length = static_cast<int>(size);
    if (unprotect_(session_, packet.data(), &length) != 0 || length < 0) {
        return false;
    }
    packet.resize(static_cast<std::size_t>(length));
    return true;
}

namespace {
constexpr unsigned kMaxDropout = 3000;  // rtcroom.server.sfu.sequence's MAX_DROPOUT
constexpr unsigned kMaxMisorder = 100;

bool Uint16Greater(std::uint16_t a, std::uint16_t b) {
    return (a > b && a - b < 0x8000) || (a < b && b - a > 0x8000);
}
}  // namespace

ReceiveStream::ReceiveStream(int clock_rate, bool nack) : clock_rate_(clock_rate), nack_(nack) {
    if (clock_rate <= 0) {
        throw std::invalid_argument("clock_rate must be positive");
    }
}

ReceiveStream::Verdict ReceiveStream::Add(std::uint16_t seq, std::uint32_t timestamp,
                                          double now) {
    Verdict verdict = kAccept;
    if (!check_max_) {
        check_max_ = seq;
    } else {
        const unsigned delta = static_cast<std::uint16_t>(seq - *check_max_);
        if (delta < kMaxDropout) {
            check_max_ = seq;
        } else if (delta <= 0x10000 - kMaxMisorder) {
            if (bad_seq_ != seq) {
                bad_seq_ = static_cast<std::uint16_t>(seq + 1);
                return kDrop;
            }
            check_max_ = seq;
            bad_seq_.reset();
            verdict = kRestart;
            *this = [&] {
                ReceiveStream fresh(clock_rate_, nack_);
                fresh.check_max_ = seq;
                return fresh;
            }();
        }  // else a duplicate or a late packet: accepted
    }
    Count(seq, timestamp, now);
    if (nack_ && Missed(seq) && verdict == kAccept) {
        verdict = kLoss;
    }
    return verdict;
}

bool ReceiveStream::Missed(std::uint16_t seq) {
    constexpr std::uint16_t kHistory = 128;  // aiortc.rtcrtpreceiver.RTP_HISTORY_SIZE
    if (!nack_max_) {
        nack_max_ = seq;
        return false;
    }
    bool missed = false;
    if (Uint16Greater(seq, *nack_max_)) {
        for (std::uint16_t s = *nack_max_ + 1; Uint16Greater(seq, s); ++s) {
            missing_.insert(s);
            missed = true;
        }
        nack_max_ = seq;
    } else {
        missing_.erase(seq);
    }
    const std::uint16_t oldest = *nack_max_ - kHistory;
    for (auto it = missing_.begin(); it != missing_.end();) {
        it = Uint16Greater(oldest, *it) ? missing_.erase(it) : std::next(it);
    }
    return missed;
}

void ReceiveStream::Count(std::uint16_t seq, std::uint32_t timestamp, double now) {
    const bool in_order = !max_seq_ || Uint16Greater(seq, *max_seq_);
    ++packets_received_;
    if (!base_seq_) {
        base_seq_ = seq;
    }
    if (!in_order) {
        return;
    }
    const auto arrival = static_cast<std::int64_t>(now * clock_rate_);
    if (max_seq_ && seq < *max_seq_) {
        cycles_ += 1 << 16;
    }
    max_seq_ = seq;
    if (timestamp != last_timestamp_ && packets_received_ > 1) {
        std::int64_t diff = (arrival - *last_arrival_) -
                            (static_cast<std::int64_t>(timestamp) - *last_timestamp_);
        diff = diff < 0 ? -diff : diff;
        jitter_q4_ += diff - ((jitter_q4_ + 8) >> 4);
    }
    last_arrival_ = arrival;
    last_timestamp_ = timestamp;
}

std::int64_t ReceiveStream::packets_expected() const {
    if (!max_seq_ || !base_seq_) {
        return 0;
    }
    return cycles_ + *max_seq_ - *base_seq_ + 1;
}

std::int64_t ReceiveStream::packets_lost() const {
    const std::int64_t lost = packets_expected() - packets_received_;
    return std::min<std::int64_t>(std::max<std::int64_t>(lost, -0x800000), 0x7FFFFF);
}

int ReceiveStream::TakeFractionLost() {
    const std::int64_t expected = packets_expected();
    const std::int64_t expected_interval = expected - expected_prior_;
    expected_prior_ = expected;
    const std::int64_t received_interval = packets_received_ - received_prior_;
    received_prior_ = packets_received_;
    const std::int64_t lost_interval = expected_interval - received_interval;
    if (expected_interval == 0 || lost_interval <= 0) {
        return 0;
    }
    return static_cast<int>((lost_interval << 8) / expected_interval);
}

Forwarder::Forwarder(std::uint32_t ssrc, int clock_rate, std::array<int, 128> payload_types,
                     std::array<bool, 128> vp8, Extensions extensions, bool wait_for_keyframe,
                     std::uint16_t first_sequence_number, std::uint32_t first_timestamp)
    : ssrc_(ssrc), clock_rate_(clock_rate), payload_types_(payload_types), vp8_(vp8),
      extensions_(std::move(extensions)), wait_for_keyframe_(wait_for_keyframe),
      last_seq_(static_cast<std::uint16_t>(first_sequence_number - 1)),
      last_ts_(first_timestamp) {}

void Forwarder::Select(std::optional<std::uint32_t> ssrc) {
    target_ = ssrc;
    if (!ssrc) {
        source_.reset();
    }
}

void Forwarder::Restart(std::uint32_t ssrc) {
    if (source_ == ssrc) {
        source_.reset();
    }
}

bool Forwarder::Rewrite(const std::uint8_t *data, std::size_t size, bool keyframe, double now,
                        const std::uint8_t *level, std::size_t level_size, std::string &out) {
    RtpView h;
    if (!ParseRtp(data, size, h)) {
        return false;
    }
    if (h.ssrc != source_) {
        if (h.ssrc != target_ || (wait_for_keyframe_ && !keyframe)) {
            return false;
        }
        Rebase(h, now);
        source_ = h.ssrc;
    } else if (static_cast<std::uint16_t>(h.sequence_number - segment_start_) >= 0x8000) {
        return false;  // from before this stream was (re)started
    }
    if (!Write(data, size, h, now, level, level_size, true, out)) {
        return false;
    }
    auto seq = static_cast<std::uint16_t>(h.sequence_number + seq_delta_);
    if (SeqNewer(seq, last_seq_)) {
        last_seq_ = seq;
        last_ts_ = h.timestamp + ts_delta_;
        last_time_ = now;
        if (written_picture_id_) {
            last_picture_id_ = written_picture_id_;
        }
        if (written_tl0_) {
            last_tl0_ = written_tl0_;
        }
    }
    ++packets_;
    octets_ += h.payload_end - h.payload_offset;
    return true;
}

bool Forwarder::Retransmission(const std::uint8_t *data, std::size_t size, double now,
                               const std::uint8_t *level, std::size_t level_size,
                               std::string &out) {
    RtpView h;
    if (!ParseRtp(data, size, h) || h.ssrc != source_ ||
        static_cast<std::uint16_t>(h.sequence_number - segment_start_) >= 0x8000) {
        return false;
    }
    return Write(data, size, h, now, level, level_size, false, out);
}

std::optional<std::uint16_t> Forwarder::SourceSequenceNumber(
    std::uint16_t sequence_number) const {
    if (!source_) {
        return std::nullopt;
    }
    auto seq = static_cast<std::uint16_t>(sequence_number - seq_delta_);
    if (static_cast<std::uint16_t>(seq - segment_start_) >= 0x8000) {
        return std::nullopt;
    }
    return seq;
}

void Forwarder::Rebase(const RtpView &h, double now) {
    std::int64_t ts = last_ts_;
    if (last_time_) {
        // Python's round(): half to even, which nearbyint does in the default rounding mode.
        auto elapsed = static_cast<std::int64_t>(std::nearbyint((now - *last_time_) * clock_rate_));
        ts += elapsed > 1 ? elapsed : 1;
    }
    seq_delta_ = static_cast<std::uint16_t>(last_seq_ + 1 - h.sequence_number);
    ts_delta_ = static_cast<std::uint32_t>(ts - h.timestamp);
    segment_start_ = h.sequence_number;
    vp8_rebase_ = true;
}

bool Forwarder::Write(const std::uint8_t *data, std::size_t size, const RtpView &h, double now,
                      const std::uint8_t *level, std::size_t level_size, bool forwarding,
                      std::string &out) {
    int pt = payload_types_[h.payload_type];
    if (pt < 0) {
        return false;
    }
    out.clear();
    out.reserve(size + 64 + kMaxTrailer);
    out.append(12, '\0');
    out.append(reinterpret_cast<const char *>(data) + 12, h.csrc_end - 12);
    std::size_t ext_start = out.size();
    WriteExtensions(extensions_, level, level_size, now, out);
    bool ext = out.size() > ext_start;
    out[0] = static_cast<char>(0x80 | (data[0] & 0x2F) | (ext ? 0x10 : 0));
    out[1] = static_cast<char>((h.marker ? 0x80 : 0) | pt);
    std::string head;
    Put16(head, static_cast<std::uint16_t>(h.sequence_number + seq_delta_));
    Put32(head, h.timestamp + ts_delta_);
    Put32(head, ssrc_);
    out.replace(2, 10, head);
    std::size_t payload_start = out.size();
    out.append(reinterpret_cast<const char *>(data) + h.payload_offset, size - h.payload_offset);
    written_picture_id_.reset();
    written_tl0_.reset();
    if (!vp8_[h.payload_type]) {
        return true;
    }
    Vp8Fields f = FindVp8Fields(data, h.payload_offset, h.payload_end);
    if (forwarding && vp8_rebase_) {
        vp8_rebase_ = false;
        picture_id_delta_ = 0;
        tl0_delta_ = 0;
        if (f.picture_id && last_picture_id_) {
            std::uint16_t pid = f.long_picture_id
                ? static_cast<std::uint16_t>(Read16(data + f.picture_id) & 0x7FFF)
                : static_cast<std::uint16_t>(data[f.picture_id] & 0x7F);
            picture_id_delta_ = static_cast<std::uint16_t>(*last_picture_id_ + 1 - pid);
        }
        if (f.tl0 && last_tl0_) {
            tl0_delta_ = static_cast<std::uint8_t>(*last_tl0_ + 1 - data[f.tl0]);
        }
    }
    std::size_t shift = payload_start - h.payload_offset;
    if (f.picture_id) {
        std::size_t at = f.picture_id + shift;
        if (f.long_picture_id) {
            auto pid = static_cast<std::uint16_t>(
                (Read16(data + f.picture_id) + picture_id_delta_) & 0x7FFF);
            out[at] = static_cast<char>(0x80 | (pid >> 8));
            out[at + 1] = static_cast<char>(pid & 0xFF);
            written_picture_id_ = pid;
        } else {
            auto pid = static_cast<std::uint16_t>((data[f.picture_id] + picture_id_delta_) & 0x7F);
            out[at] = static_cast<char>(pid);
            written_picture_id_ = pid;
        }
    }
    if (f.tl0) {
        auto tl0 = static_cast<std::uint8_t>(data[f.tl0] + tl0_delta_);
        out[f.tl0 + shift] = static_cast<char>(tl0);
        written_tl0_ = tl0;
    }
    return true;
}

Sink::Outcome Forwarder::Send(std::string &out, double now) {
    std::size_t size = out.size();  // counted as the Python side counts: before SRTP
    Sink::Outcome outcome = sink_
        ? sink_->Send(out, pacer::PacketClass::kVideo, std::llround(now * 1e6),
                      extensions_.abs_send_time_id)
        : Sink::kFailed;
    if (outcome == Sink::kFailed) {
        ++send_errors_;
    } else {
        ++sent_packets_;
        sent_bytes_ += size;
    }
    return outcome;
}

}  // namespace rtcroom::forward
