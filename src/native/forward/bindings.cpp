#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

#include "forward/forward.h"

namespace py = pybind11;
using namespace rtcroom::forward;

namespace {

struct Bytes {
    const std::uint8_t *data = nullptr;
    std::size_t size = 0;
};

// A view of bytes the caller keeps alive for the call (no copy).
Bytes View(py::handle data) {
    char *p = nullptr;
    Py_ssize_t n = 0;
    if (PyBytes_AsStringAndSize(data.ptr(), &p, &n) != 0) {
        throw py::error_already_set();
    }
    return {reinterpret_cast<const std::uint8_t *>(p), static_cast<std::size_t>(n)};
}

Bytes OptionalView(const py::object &data) {
    return data.is_none() ? Bytes{} : View(data);
}

py::object Result(bool ok, const std::string &out) {
    return ok ? py::object(py::bytes(out)) : py::object(py::none());
}

std::string SocketAddress(const std::string &host, int port) {
#ifndef _WIN32
    if (port < 0 || port > 65535) {
        throw std::invalid_argument("port must be 0 to 65535");
    }
    sockaddr_in v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(static_cast<std::uint16_t>(port));
        return std::string(reinterpret_cast<const char *>(&v4), sizeof v4);
    }
    sockaddr_in6 v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(static_cast<std::uint16_t>(port));
        return std::string(reinterpret_cast<const char *>(&v6), sizeof v6);
    }
    throw std::invalid_argument("not a numeric IPv4 or IPv6 address: " + host);
#else
    (void)host;
    (void)port;
    throw std::invalid_argument("native sending is not available on Windows");
#endif
}

// rtcroom.server.sfu.rtpheader.parse_header's fields as a tuple (its plain-Python twin is
// tests/sfu_rtpheader_reference.py): the fixed header, offsets, and the header extension
// elements by id (a later element of the same id wins; values cut at the packet's end).
py::tuple ParseHeader(const py::bytes &packet) {
    Bytes b = View(packet);
    const std::uint8_t *d = b.data;
    const std::size_t size = b.size;
    if (size < 12) {
        throw py::value_error("RTP packet shorter than 12 bytes");
    }
    if (d[0] >> 6 != 2) {
        throw py::value_error("RTP version is not 2");
    }
    std::size_t pos = 12 + 4 * std::size_t{d[0] & 0x0Fu};
    if (pos > size) {
        throw py::value_error("RTP CSRC list truncated");
    }
    const std::size_t csrc_end = pos;
    py::dict extensions;
    auto element = [&](std::size_t id, std::size_t from, std::size_t length) {
        from = std::min(from, size);
        length = std::min(length, size - from);
        extensions[py::int_(id)] =
            py::bytes(reinterpret_cast<const char *>(d + from), length);
    };
    if (d[0] & 0x10) {
        if (size < pos + 4) {
            throw py::value_error("RTP header extension truncated");
        }
        const unsigned profile = (unsigned{d[pos]} << 8) | d[pos + 1];
        const std::size_t end = pos + 4 + 4 * ((std::size_t{d[pos + 2]} << 8) | d[pos + 3]);
        if (size < end) {
            throw py::value_error("RTP header extension truncated");
        }
        std::size_t p = pos + 4;
        if (profile == 0xBEDE) {
            while (p < end) {
                const unsigned byte = d[p];
                if (byte == 0) {  // padding between elements
                    ++p;
                    continue;
                }
                const std::size_t id = byte >> 4, length = (byte & 0x0F) + 1;
                if (id == 15) {  // reserved: stop parsing (RFC 8285 section 4.2)
                    break;
                }
                element(id, p + 1, length);
                p += 1 + length;
            }
        } else if ((profile & 0xFFF0) == 0x1000) {
            while (p + 1 < end) {
                const std::size_t id = d[p];
                if (id == 0) {
                    ++p;
                    continue;
                }
                const std::size_t length = d[p + 1];
                element(id, p + 2, length);
                p += 2 + length;
            }
        }
        pos = end;
    }
    std::size_t payload_end = size;
    if (d[0] & 0x20) {
        const std::size_t padding = d[size - 1];
        if (padding == 0 || padding > payload_end - pos) {
            throw py::value_error("RTP padding length invalid");
        }
        payload_end -= padding;
    }
    return py::make_tuple(d[1] >> 7, d[1] & 0x7F, (unsigned{d[2]} << 8) | d[3],
                          (std::uint32_t{d[4]} << 24) | (std::uint32_t{d[5]} << 16) |
                              (std::uint32_t{d[6]} << 8) | d[7],
                          (std::uint32_t{d[8]} << 24) | (std::uint32_t{d[9]} << 16) |
                              (std::uint32_t{d[10]} << 8) | d[11],
                          csrc_end, pos, payload_end, extensions);
}

}  // namespace

PYBIND11_MODULE(forward, m) {
    m.doc() = "Per-subscriber RTP rewriting and sending for the SFU; see "
              "rtcroom.server.sfu.forwarder.";
    py::class_<Sink, std::shared_ptr<Sink>>(m, "Sink")
        .def(py::init([](std::uintptr_t protect, std::uintptr_t session, std::intptr_t fd,
                         const std::string &host, int port) {
                 return std::make_shared<Sink>(protect, session, fd, SocketAddress(host, port));
             }),
             py::arg("protect"), py::arg("session"), py::arg("fd"), py::arg("host"),
             py::arg("port"))
        .def("send",
             [](Sink &sink, const py::bytes &data) {
                 Bytes d = View(data);
                 std::string packet(reinterpret_cast<const char *>(d.data), d.size);
                 return sink.Transmit(packet);
             },
             py::arg("data"), "Protects and sends one RTP packet now, paced or not; False if "
             "refused.")
        .def("pace",
             [](Sink &sink, std::int64_t target_bitrate, std::int64_t now_us,
                double pacing_factor, std::int64_t burst_us, std::int64_t queue_time_limit_us,
                std::array<std::size_t, rtcroom::pacer::kNumClasses> max_packets) {
                 rtcroom::pacer::Config config;
                 config.pacing_factor = pacing_factor;
                 config.burst_us = burst_us;
                 config.queue_time_limit_us = queue_time_limit_us;
                 config.max_packets = max_packets;
                 sink.Pace(target_bitrate, now_us, config);
             },
             py::arg("target_bitrate"), py::arg("now_us"), py::kw_only(),
             py::arg("pacing_factor") = rtcroom::pacer::Config().pacing_factor,
             py::arg("burst_us") = rtcroom::pacer::Config().burst_us,
             py::arg("queue_time_limit_us") = rtcroom::pacer::Config().queue_time_limit_us,
             py::arg("max_packets") = rtcroom::pacer::Config().max_packets,
             "Paces what send_paced and the attached forwarders send from now on (the rules "
             "of rtcroom.pacer.Pacer, whose arguments these are).")
        .def("set_target_bitrate", &Sink::SetTargetBitrate, py::arg("target_bitrate"),
             py::arg("now_us"))
        .def_property_readonly("target_bitrate",
                               [](const Sink &sink) -> std::optional<std::int64_t> {
                                   if (!sink.pacer()) return std::nullopt;
                                   return sink.pacer()->target_bitrate_bps();
                               })
        .def("send_paced",
             [](Sink &sink, const py::bytes &data, int packet_class, std::int64_t now_us,
                int abs_send_time_id) {
                 if (packet_class < 0 || packet_class >= rtcroom::pacer::kNumClasses) {
                     throw std::invalid_argument("packet class must be 0 (audio), 1 "
                                                 "(retransmission) or 2 (video)");
                 }
                 Bytes d = View(data);
                 std::string packet(reinterpret_cast<const char *>(d.data), d.size);
                 return static_cast<int>(
                     sink.Send(packet, static_cast<rtcroom::pacer::PacketClass>(packet_class),
                               now_us, abs_send_time_id));
             },
             py::arg("data"), py::arg("packet_class"), py::arg("now_us"),
             py::arg("abs_send_time_id") = -1,
             "Sends one RTP packet, or queues it if the sink paces and it must wait: 0 sent, 1 "
             "queued, 2 queued and the queue was empty (call drain at next_send_time), 3 "
             "refused.")
        .def("drain",
             [](Sink &sink, std::int64_t now_us) -> std::optional<std::int64_t> {
                 std::int64_t next = sink.Drain(now_us);
                 if (next == rtcroom::pacer::kNever) return std::nullopt;
                 return next;
             },
             py::arg("now_us"),
             "Sends what is due by now_us; returns when the next queued packet is due (None: "
             "nothing queued).")
        .def("next_send_time",
             [](const Sink &sink) -> std::optional<std::int64_t> {
                 std::int64_t next =
                     sink.pacer() ? sink.pacer()->NextSendTime() : rtcroom::pacer::kNever;
                 if (next == rtcroom::pacer::kNever) return std::nullopt;
                 return next;
             })
        .def_property_readonly("queued_packets",
                               [](const Sink &sink) {
                                   return sink.pacer() ? sink.pacer()->queued_packets() : 0;
                               })
        .def_property_readonly("dropped_packets",
                               [](const Sink &sink) {
                                   std::uint64_t n = 0;
                                   for (int c = 0; sink.pacer() && c < rtcroom::pacer::kNumClasses;
                                        ++c) {
                                       n += sink.pacer()->dropped_packets(
                                           static_cast<rtcroom::pacer::PacketClass>(c));
                                   }
                                   return n;
                               })
        .def_property_readonly("sent_packets", &Sink::sent_packets)
        .def_property_readonly("delayed_packets", &Sink::delayed_packets)
        .def_property_readonly("send_errors", &Sink::send_errors)
        .def_property_readonly("closed", &Sink::closed)
        .def("close", &Sink::Close);
    py::class_<Source>(m, "Source")
        .def(py::init<std::uintptr_t, std::uintptr_t>(), py::arg("unprotect"),
             py::arg("session"))
        .def("unprotect",
             [](Source &source, const py::bytes &data) {
                 Bytes d = View(data);
                 std::string packet;
                 return Result(source.Unprotect(d.data, d.size, packet), packet);
             },
             py::arg("data"), "Verifies and decrypts one SRTP packet; None if refused.");
    py::class_<ReceiveStream>(m, "ReceiveStream")
        .def(py::init<int, bool>(), py::arg("clock_rate"), py::arg("nack") = false)
        .def("add",
             [](ReceiveStream &r, std::uint16_t seq, std::uint32_t timestamp, double now) {
                 return static_cast<int>(r.Add(seq, timestamp, now));
             },
             py::arg("sequence_number"), py::arg("timestamp"), py::arg("now"),
             "Counts one packet: 0 accepted, 1 accepted as a restart of the stream's numbering "
             "(statistics start over), 2 dropped, 3 accepted and it showed new losses (only "
             "with nack: NACK `missing` now).")
        .def_property_readonly("missing", &ReceiveStream::missing)
        .def_property_readonly("base_seq", &ReceiveStream::base_seq)
        .def_property_readonly("max_seq", &ReceiveStream::max_seq)
        .def_property_readonly("cycles", &ReceiveStream::cycles)
        .def_property_readonly("packets_received", &ReceiveStream::packets_received)
        .def_property_readonly("packets_expected", &ReceiveStream::packets_expected)
        .def_property_readonly("packets_lost", &ReceiveStream::packets_lost)
        .def_property_readonly("jitter", &ReceiveStream::jitter)
        .def_property_readonly("fraction_lost", &ReceiveStream::TakeFractionLost,
                               "Since the last read, which starts the next interval (as "
                               "aiortc's StreamStatistics).");
    py::class_<Forwarder>(m, "Forwarder")
        .def(py::init([](std::uint32_t ssrc, int clock_rate, const py::dict &payload_types,
                         const std::vector<int> &vp8_payload_types, int mid_id,
                         const std::string &mid, int audio_level_id, int abs_send_time_id,
                         bool wait_for_keyframe, std::uint16_t first_sequence_number,
                         std::uint32_t first_timestamp) {
                 if (clock_rate <= 0) {
                     throw std::invalid_argument("clock_rate must be positive");
                 }
                 std::array<int, 128> types;
                 types.fill(-1);
                 for (auto item : payload_types) {
                     int from = item.first.cast<int>(), to = item.second.cast<int>();
                     if (from < 0 || from > 127 || to < 0 || to > 127) {
                         throw std::invalid_argument("payload types must be 0 to 127");
                     }
                     types[from] = to;
                 }
                 std::array<bool, 128> vp8{};
                 for (int pt : vp8_payload_types) {
                     if (pt < 0 || pt > 127) {
                         throw std::invalid_argument("payload types must be 0 to 127");
                     }
                     vp8[pt] = true;
                 }
                 for (int id : {mid_id, audio_level_id, abs_send_time_id}) {
                     if (id < -1 || id == 0 || id > 255) {
                         throw std::invalid_argument(
                             "header extension ids must be 1 to 255 (-1: none)");
                     }
                 }
                 if (mid.size() > 255) {
                     throw std::invalid_argument("mid longer than 255 bytes");
                 }
                 return new Forwarder(ssrc, clock_rate, types, vp8,
                                      Extensions{mid_id, mid, audio_level_id, abs_send_time_id},
                                      wait_for_keyframe, first_sequence_number, first_timestamp);
             }),
             py::kw_only(), py::arg("ssrc"), py::arg("clock_rate"), py::arg("payload_types"),
             py::arg("vp8_payload_types"), py::arg("mid_id"), py::arg("mid"),
             py::arg("audio_level_id"), py::arg("abs_send_time_id"),
             py::arg("wait_for_keyframe"), py::arg("first_sequence_number"),
             py::arg("first_timestamp"))
        .def("select", &Forwarder::Select, py::arg("ssrc"))
        .def("restart", &Forwarder::Restart, py::arg("ssrc"))
        .def("rewrite",
             [](Forwarder &f, const py::bytes &data, bool keyframe, double now,
                const py::object &audio_level) {
                 Bytes d = View(data), level = OptionalView(audio_level);
                 std::string out;
                 return Result(f.Rewrite(d.data, d.size, keyframe, now, level.data, level.size,
                                         out), out);
             },
             py::arg("data"), py::arg("keyframe"), py::arg("now"),
             py::arg("audio_level") = py::none())
        .def("retransmission",
             [](Forwarder &f, const py::bytes &data, double now, const py::object &audio_level) {
                 Bytes d = View(data), level = OptionalView(audio_level);
                 std::string out;
                 return Result(f.Retransmission(d.data, d.size, now, level.data, level.size,
                                                out), out);
             },
             py::arg("data"), py::arg("now"), py::arg("audio_level") = py::none())
        .def("source_sequence_number", &Forwarder::SourceSequenceNumber,
             py::arg("sequence_number"))
        .def("attach", &Forwarder::Attach, py::arg("sink"))
        .def("detach", [](Forwarder &f) { f.Attach(nullptr); })
        .def_property_readonly("attached", &Forwarder::attached)
        .def_property_readonly("wants_keyframe", &Forwarder::WantsKeyframe)
        .def_property_readonly("ssrc", &Forwarder::ssrc)
        .def_property_readonly("source", &Forwarder::source)
        .def_property_readonly("target", &Forwarder::target)
        .def_property_readonly("seq_delta", &Forwarder::seq_delta)
        .def_property_readonly("ts_delta", &Forwarder::ts_delta)
        .def_property_readonly("packets", &Forwarder::packets)
        .def_property_readonly("octets", &Forwarder::octets)
        .def_property_readonly("sent_packets", &Forwarder::sent_packets)
        .def_property_readonly("sent_bytes", &Forwarder::sent_bytes)
        .def_property_readonly("send_errors", &Forwarder::send_errors);

    m.def("parse_header", &ParseHeader, py::arg("data"),
          "(marker, payload_type, sequence_number, timestamp, ssrc, csrc_end, payload_offset, "
          "payload_end, extensions) of an RTP packet; ValueError if it is not one.");
    m.def(
        "forward_all",
        [](const py::bytes &data, bool keyframe, double now, const py::object &audio_level,
           const py::sequence &forwarders) {
            Bytes d = View(data), level = OptionalView(audio_level);
            std::vector<Forwarder *> legs;
            legs.reserve(forwarders.size());
            for (auto item : forwarders) {
                legs.push_back(item.cast<Forwarder *>());
            }
            std::vector<std::pair<std::size_t, std::string>> unsent;
            std::vector<std::shared_ptr<Sink>> started;
            std::optional<std::uint32_t> wanted;
            {
                // The forwarders and their SRTP sessions belong to the event loop's thread,
                // which is in this call: nothing else touches them meanwhile.
                py::gil_scoped_release release;
                std::string out;
                for (std::size_t i = 0; i < legs.size(); ++i) {
                    Forwarder &f = *legs[i];
                    if (f.Rewrite(d.data, d.size, keyframe, now, level.data, level.size, out)) {
                        if (!f.attached()) {
                            unsent.emplace_back(i, out);
                        } else if (f.Send(out, now) == Sink::kStarted) {
                            started.push_back(f.sink());
                        }
                    } else if (f.WantsKeyframe()) {
                        wanted = f.target();
                    }
                }
            }
            py::list back;
            for (auto &[i, out] : unsent) {
                back.append(py::make_tuple(i, py::bytes(out)));
            }
            py::list queued;
            for (auto &sink : started) {
                queued.append(py::cast(sink));
            }
            return py::make_tuple(back, wanted ? py::object(py::int_(*wanted)) : py::none(),
                                  queued);
        },
        py::arg("data"), py::arg("keyframe"), py::arg("now"), py::arg("audio_level"),
        py::arg("forwarders"),
        "Rewrites one incoming packet for every forwarder; those with a sink send it (or their "
        "paced sink queues it). Returns (index, packet) for the others, an SSRC a forwarder "
        "waits for a keyframe of (or None), and the paced sinks whose queue this call started "
        "(drain them at their next_send_time; `now` in seconds is their clock x 1e-6).");
}
