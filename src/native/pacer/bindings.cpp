#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "pacer/pacer.h"

namespace py = pybind11;
using namespace rtcroom::pacer;

namespace {

PacketClass ToClass(int c) {
    if (c < 0 || c >= kNumClasses) {
        throw std::invalid_argument("packet class must be 0 (audio), 1 (retransmission) or "
                                    "2 (video), got " + std::to_string(c));
    }
    return static_cast<PacketClass>(c);
}

py::object ToTuple(const Released &r) {
    return py::make_tuple(py::bytes(r.data), static_cast<int>(r.packet_class), r.due_us);
}

}  // namespace

PYBIND11_MODULE(pacer, m) {
    m.doc() = "Leaky-bucket RTP pacer with injected time; see rtcroom.pacer.";
    py::class_<Pacer>(m, "Pacer")
        .def(py::init([](std::int64_t target_bitrate, std::int64_t now_us, double pacing_factor,
                         std::int64_t burst_us, std::int64_t queue_time_limit_us,
                         std::array<std::size_t, kNumClasses> max_packets) {
                 Config config;
                 config.pacing_factor = pacing_factor;
                 config.burst_us = burst_us;
                 config.queue_time_limit_us = queue_time_limit_us;
                 config.max_packets = max_packets;
                 return Pacer(target_bitrate, now_us, config);
             }),
             py::arg("target_bitrate"), py::arg("now_us"), py::kw_only(),
             py::arg("pacing_factor") = Config().pacing_factor,
             py::arg("burst_us") = Config().burst_us,
             py::arg("queue_time_limit_us") = Config().queue_time_limit_us,
             py::arg("max_packets") = Config().max_packets)
        .def("set_target_bitrate", &Pacer::SetTargetBitrate, py::arg("target_bitrate"),
             py::arg("now_us"))
        .def("enqueue",
             [](Pacer &p, py::bytes data, int packet_class, std::int64_t now_us) {
                 return p.Enqueue(std::string(data), ToClass(packet_class), now_us);
             },
             py::arg("data"), py::arg("packet_class"), py::arg("now_us"))
        .def("next_send_time",
             [](const Pacer &p) -> std::optional<std::int64_t> {
                 std::int64_t t = p.NextSendTime();
                 if (t == kNever) return std::nullopt;
                 return t;
             })
        .def("pop",
             [](Pacer &p, std::int64_t now_us) -> py::object {
                 auto r = p.Pop(now_us);
                 return r ? ToTuple(*r) : py::none();
             },
             py::arg("now_us"))
        // Everything due by `now_us` in one call: one crossing into C++ per wake-up, not per packet.
        .def("pop_due",
             [](Pacer &p, std::int64_t now_us) {
                 py::list out;
                 while (auto r = p.Pop(now_us)) out.append(ToTuple(*r));
                 return out;
             },
             py::arg("now_us"))
        .def_property_readonly("target_bitrate", &Pacer::target_bitrate_bps)
        .def_property_readonly("pacing_rate", &Pacer::pacing_rate_bps)
        .def_property_readonly("queued_bytes", &Pacer::queued_bytes)
        .def("queued_packets",
             [](const Pacer &p, std::optional<int> c) {
                 return c ? p.queued_packets(ToClass(*c)) : p.queued_packets();
             },
             py::arg("packet_class") = py::none())
        .def("dropped_packets",
             [](const Pacer &p, int c) { return p.dropped_packets(ToClass(c)); },
             py::arg("packet_class"));
}
