// Per-subscriber rewriting of forwarded RTP, and the send of its result, for the SFU.
//
// Forwarder is rtcroom.server.sfu.forwarder's state machine (its docstrings explain the rules;
// the plain-Python twin in tests/sfu_forwarder_reference.py is the oracle): one source stream
// selected at a time, switches at keyframes, sequence numbers and timestamps continuous across
// switches and pauses, the leg's payload types, header extensions and VP8 picture ids.
//
// A Forwarder may carry a Sink: the leg's SRTP session and socket, so that the packets it
// rewrites are protected and sent here, with no Python between the incoming packet and the
// kernel. The SRTP session is the one libsrtp session the leg's DTLS transport already uses
// (reached through pylibsrtp's cffi binding, by function and context pointer: rtcroom links no
// libsrtp of its own, and two copies of it must not share a session); the caller keeps the
// session alive while attached. The socket is a duplicate of the leg's, so a socket closed on
// the Python side cannot redirect these sends to a reused descriptor.
//
// A Sink may pace (Pace): then it holds the leaky bucket of rtcroom's pacer (src/native/pacer/)
// for its connection, and a packet goes out inside the call that hands it over as long as
// nothing waits and the packet fits the budget (the common case: one budget check); only what is
// over it, a keyframe's burst, is queued here, in order, and leaves when the owner's timer calls
// Drain. A queued packet is protected when it leaves, and its abs-send-time, if it has one, is
// rewritten then, as libwebrtc's pacer does: the receiver's delay-based estimate sees when the
// packet really left.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pacer/pacer.h"

namespace rtcroom::forward {

struct RtpView {
    bool marker;
    int payload_type;
    std::uint16_t sequence_number;
    std::uint32_t timestamp;
    std::uint32_t ssrc;
    std::size_t csrc_end;
    std::size_t payload_offset;
    std::size_t payload_end;
};

// False for anything that is not a well-formed RTP version 2 packet (as parse_header raises).
bool ParseRtp(const std::uint8_t *data, std::size_t size, RtpView &out);

struct Extensions {
    int mid_id = -1;  // -1: not negotiated on the leg
    std::string mid;
    int audio_level_id = -1;
    int abs_send_time_id = -1;
};

// The leg's header extension block for one packet (empty for none), as LegExtensions.block.
void WriteExtensions(const Extensions &ext, const std::uint8_t *audio_level,
                     std::size_t audio_level_size, double now, std::string &out);

// libsrtp 2's srtp_protect(srtp_t, void *rtp, int *len).
using ProtectFunction = int (*)(void *session, void *packet, int *length);

// Where the value of the header extension element `id` (one-byte or two-byte form) of an RTP
// packet starts, if it is there and `length` bytes long; 0 otherwise.
std::size_t FindExtension(const std::uint8_t *data, std::size_t size, int id, std::size_t length);

class Sink {
public:
    // What became of a packet handed to Send.
    enum Outcome {
        kSent = 0,
        kQueued = 1,   // paced: it waits for Drain
        kStarted = 2,  // the same, and the queue was empty: the owner's timer must start
        kFailed = 3,   // libsrtp or the kernel refused it, or the sink is closed
    };

    // `fd` is duplicated; `address` is a sockaddr_in or sockaddr_in6 as bytes.
    Sink(std::uintptr_t protect, std::uintptr_t session, std::intptr_t fd,
         const std::string &address);
    ~Sink();
    Sink(const Sink &) = delete;
    Sink &operator=(const Sink &) = delete;
    // Protects the packet (in `packet`, which grows by the SRTP trailer) and sends it, paced or
    // not; false when libsrtp or the kernel refuses it.
    bool Transmit(std::string &packet);

    // Paces what Send is given from now on (see the top of this file).
    void Pace(std::int64_t target_bitrate_bps, std::int64_t now_us, pacer::Config config);
    bool paced() const { return pacer_.has_value(); }
    // The pacer, once Pace was called.
    const pacer::Pacer *pacer() const { return pacer_ ? &*pacer_ : nullptr; }
    void SetTargetBitrate(std::int64_t target_bitrate_bps, std::int64_t now_us);
    // Sends `packet` (audio always at once), or queues it when paced and it must wait.
    // `abs_send_time_id`: the packet's abs-send-time extension id (-1: none), rewritten if the
    // packet waits. `now_us`: microseconds on the clock Drain is given.
    Outcome Send(std::string &packet, pacer::PacketClass packet_class, std::int64_t now_us,
                 int abs_send_time_id);
    // Sends everything due by `now_us`; returns when the next queued packet is due
    // (pacer::kNever when none is).
    std::int64_t Drain(std::int64_t now_us);
    // Sends nothing more from now on and drops what is queued (and the pacer): the caller is
    // about to let the SRTP session go.
    void Close();
    bool closed() const { return closed_; }

    std::uint64_t sent_packets() const { return sent_packets_; }
    // Packets that waited in the queue before they left.
    std::uint64_t delayed_packets() const { return delayed_packets_; }
    std::uint64_t send_errors() const { return send_errors_; }

private:
    struct Waiting {
        std::string packet;
        std::size_t abs_send_time_at;  // 0: none
    };

    ProtectFunction protect_;
    void *session_;
    int fd_;
    std::string address_;  // struct sockaddr_in or sockaddr_in6
    bool closed_ = false;
    std::optional<pacer::Pacer> pacer_;
    // The packets the pacer queued by size, one FIFO per class as its own queues.
    std::array<std::deque<Waiting>, pacer::kNumClasses> waiting_;
    std::uint64_t sent_packets_ = 0, delayed_packets_ = 0, send_errors_ = 0;
};

// libsrtp 2's srtp_unprotect(srtp_t, void *srtp_hdr, int *len).
using UnprotectFunction = int (*)(void *session, void *packet, int *length);

// The receiving half of a connection's SRTP: the libsrtp session its DTLS transport already
// decrypts with (pylibsrtp's, by function and context pointer, as Sink), so a datagram is
// verified and decrypted with one native call. The caller keeps the session alive.
class Source {
public:
    Source(std::uintptr_t unprotect, std::uintptr_t session);
    // The RTP packet in `packet`, or false when libsrtp refuses it (authentication, replay).
    bool Unprotect(const std::uint8_t *data, std::size_t size, std::string &packet);

private:
    UnprotectFunction unprotect_;
    void *session_;
};

// What the SFU keeps per stream it receives, in one call per packet: which packets to believe
// (rtcroom.server.sfu.sequence's rule, RFC 3550 appendix A.1) and the receive statistics for
// the receiver reports to the publisher (aiortc's StreamStatistics, to the number: its jitter
// in timestamp units, cumulative loss clamped to 24 bits, fraction lost since the last report).
// With `nack`, also the sequence numbers to NACK the publisher for (aiortc's NackGenerator fed
// with the packets believed, started over at a restart), so that the router needs no second
// Python object per packet for them.
// Oracles: SequenceCheck, aiortc.rtcrtpreceiver.StreamStatistics and NackGenerator
// (tests/test_sfu_packets.py).
class ReceiveStream {
public:
    // kLoss: accepted, and it showed packets missing that were not before (NACK them now).
    enum Verdict { kAccept = 0, kRestart = 1, kDrop = 2, kLoss = 3 };
    explicit ReceiveStream(int clock_rate, bool nack = false);
    // `now` in seconds (any clock; only differences count). On kRestart the statistics start
    // over from this packet; on kDrop nothing is counted.
    Verdict Add(std::uint16_t sequence_number, std::uint32_t timestamp, double now);
    // The missing sequence numbers still worth asking for, ascending (empty without `nack`).
    std::vector<std::uint16_t> missing() const { return {missing_.begin(), missing_.end()}; }

    std::optional<std::uint16_t> base_seq() const { return base_seq_; }
    std::optional<std::uint16_t> max_seq() const { return max_seq_; }
    std::int64_t cycles() const { return cycles_; }
    std::int64_t packets_received() const { return packets_received_; }
    std::int64_t jitter() const { return jitter_q4_ >> 4; }
    std::int64_t packets_expected() const;
    std::int64_t packets_lost() const;
    // Fraction lost (Q8) since the last call, which starts the next interval.
    int TakeFractionLost();

private:
    void Count(std::uint16_t sequence_number, std::uint32_t timestamp, double now);
    bool Missed(std::uint16_t sequence_number);

    int clock_rate_;
    bool nack_;
    std::optional<std::uint16_t> nack_max_;
    std::set<std::uint16_t> missing_;
    std::optional<std::uint16_t> check_max_, bad_seq_;
    std::optional<std::uint16_t> base_seq_, max_seq_;
    std::int64_t cycles_ = 0, packets_received_ = 0, jitter_q4_ = 0;
    std::optional<std::int64_t> last_arrival_;
    std::optional<std::uint32_t> last_timestamp_;
    std::int64_t expected_prior_ = 0, received_prior_ = 0;
};

class Forwarder {
public:
    Forwarder(std::uint32_t ssrc, int clock_rate, std::array<int, 128> payload_types,
              std::array<bool, 128> vp8, Extensions extensions, bool wait_for_keyframe,
              std::uint16_t first_sequence_number, std::uint32_t first_timestamp);

    void Select(std::optional<std::uint32_t> ssrc);
    void Restart(std::uint32_t ssrc);
    bool WantsKeyframe() const {
        return wait_for_keyframe_ && target_ && target_ != source_;
    }
    // The packet for the subscriber in `out`, or false to drop it.
    bool Rewrite(const std::uint8_t *data, std::size_t size, bool keyframe, double now,
                 const std::uint8_t *level, std::size_t level_size, std::string &out);
    bool Retransmission(const std::uint8_t *data, std::size_t size, double now,
                        const std::uint8_t *level, std::size_t level_size, std::string &out);
    std::optional<std::uint16_t> SourceSequenceNumber(std::uint16_t sequence_number) const;

    std::uint32_t ssrc() const { return ssrc_; }
    std::optional<std::uint32_t> source() const { return source_; }
    std::optional<std::uint32_t> target() const { return target_; }
    std::uint32_t ts_delta() const { return ts_delta_; }
    std::uint16_t seq_delta() const { return seq_delta_; }
    std::uint64_t packets() const { return packets_; }
    std::uint64_t octets() const { return octets_; }

    // Sends what this forwarder rewrites through `sink` from now on (nullptr: hand it back).
    // A paced sink paces it as video: only video forwarders are attached to one.
    void Attach(std::shared_ptr<Sink> sink) { sink_ = std::move(sink); }
    bool attached() const { return sink_ != nullptr; }
    const std::shared_ptr<Sink> &sink() const { return sink_; }
    // Hands `out` to the sink (sent, or queued by its pacer; counted as sent either way);
    // kFailed if the sink refused it (counted). `now` as given to Rewrite.
    Sink::Outcome Send(std::string &out, double now);
    std::uint64_t sent_packets() const { return sent_packets_; }
    std::uint64_t sent_bytes() const { return sent_bytes_; }
    std::uint64_t send_errors() const { return send_errors_; }

private:
    void Rebase(const RtpView &h, double now);
    // `forwarding`: the packet is forwarded (not retransmitted), so it may set the VP8 offsets.
    bool Write(const std::uint8_t *data, std::size_t size, const RtpView &h, double now,
               const std::uint8_t *level, std::size_t level_size, bool forwarding,
               std::string &out);

    std::uint32_t ssrc_;
    int clock_rate_;
    std::array<int, 128> payload_types_;  // -1: dropped
    std::array<bool, 128> vp8_;
    Extensions extensions_;
    bool wait_for_keyframe_;
    std::optional<std::uint32_t> source_, target_;
    std::uint16_t seq_delta_ = 0;
    std::uint32_t ts_delta_ = 0;
    std::uint16_t segment_start_ = 0;
    std::uint16_t last_seq_;
    std::uint32_t last_ts_;
    std::optional<double> last_time_;
    std::uint64_t packets_ = 0, octets_ = 0;
    // VP8: offsets added to the picture id and TL0PICIDX, set at the first packet of a segment
    // from the last ones sent, so a layer switch continues the subscriber's sequences.
    std::uint16_t picture_id_delta_ = 0;
    std::uint8_t tl0_delta_ = 0;
    bool vp8_rebase_ = false;
    std::optional<std::uint16_t> last_picture_id_;
    std::optional<std::uint8_t> last_tl0_;
    std::optional<std::uint16_t> written_picture_id_;  // of the packet Write just wrote
    std::optional<std::uint8_t> written_tl0_;
    std::shared_ptr<Sink> sink_;
    std::uint64_t sent_packets_ = 0, sent_bytes_ = 0, send_errors_ = 0;
};

}  // namespace rtcroom::forward
