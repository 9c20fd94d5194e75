#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "pacer/pacer.h"
#include "pacer/sender.h"

namespace py = pybind11;
using namespace rtcroom::pacer;

namespace {

PacketClass ToClass(std::int64_t c) {
    if (c < 0 || c >= kNumClasses) {
        throw std::invalid_argument("packet class must be 0 (audio), 1 (retransmission) or "
                                    "2 (video), got " + std::to_string(c));
    }
    return static_cast<PacketClass>(c);
}

// The largest datagram, so a size alone cannot push the byte counts anywhere near overflow.
constexpr std::int64_t kMaxDatagram = 65'535;

std::size_t CheckSize(std::int64_t size) {
    if (size < 0 || size > kMaxDatagram) {
        throw std::invalid_argument("packet size must be 0 to 65535 bytes, got " +
                                    std::to_string(size));
    }
    return static_cast<std::size_t>(size);
}

std::size_t CheckedSize(PyObject *item) {
    if (!PyLong_Check(item)) {
        throw py::type_error(std::string("a packet size must be an int, got ") +
                             Py_TYPE(item)->tp_name);
    }
    int overflow = 0;
    long long size = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (overflow) {
        throw std::invalid_argument("packet size must be 0 to 65535 bytes, got " +
                                    std::string(py::str(item)));
    }
    return CheckSize(size);
}

// One copy into the native queue; bytes, bytearray and memoryview are all accepted.
std::string ToString(py::handle data) {
    if (PyBytes_Check(data.ptr())) {
        return std::string(PyBytes_AS_STRING(data.ptr()),
                           static_cast<std::size_t>(PyBytes_GET_SIZE(data.ptr())));
    }
    py::buffer_info info = py::reinterpret_borrow<py::buffer>(data).request();
    if (info.ndim != 1 || info.strides[0] != info.itemsize) {
        throw std::invalid_argument("a packet must be a contiguous bytes-like object");
    }
    return std::string(static_cast<const char *>(info.ptr),
                       static_cast<std::size_t>(info.size * info.itemsize));
}

Config MakeConfig(double pacing_factor, std::int64_t burst_us, std::int64_t queue_time_limit_us,
                  std::array<std::size_t, kNumClasses> max_packets) {
    Config config;
    config.pacing_factor = pacing_factor;
    config.burst_us = burst_us;
    config.queue_time_limit_us = queue_time_limit_us;
    config.max_packets = max_packets;
    return config;
}

py::object ToTuple(const Released &r) {
    return py::make_tuple(py::bytes(r.data), static_cast<int>(r.packet_class), r.due_us);
}

}  // namespace

std::int64_t ToInt64(PyObject *value) {
    long long v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
    return v;
}

// enqueue_size(size, packet_class, now_us): PacedSender calls it once per packet, and pybind11's
// generic dispatch (argument vectors on the heap, overload matching) costs more than the decision
// itself, so this one is a plain METH_FASTCALL method.
PyObject *EnqueueSize(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    try {
        if (nargs != 3) {
            throw py::type_error("enqueue_size() takes 3 positional arguments (size, "
                                 "packet_class, now_us), got " + std::to_string(nargs));
        }
        auto &p = py::cast<Pacer &>(py::handle(self));
        std::size_t size = CheckSize(ToInt64(args[0]));  // before the class, as the twin
        PacketClass c = ToClass(ToInt64(args[1]));
        return PyBool_FromLong(p.EnqueueSize(size, c, ToInt64(args[2])));
    } catch (py::error_already_set &e) {
        e.restore();
    } catch (py::builtin_exception &e) {
        e.set_error();
    } catch (const std::invalid_argument &e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    }
    return nullptr;
}

PyMethodDef kEnqueueSize = {
    "enqueue_size", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&EnqueueSize)),
    METH_FASTCALL,
    "enqueue_size(size, packet_class, now_us) -> bool: queues a packet by size (the caller keeps "
    "it); True when the class was full and its oldest packet was dropped."};

PYBIND11_MODULE(pacer, m) {
    m.doc() = "Leaky-bucket RTP pacer with injected time; see rtcroom.pacer.";
    py::class_<Pacer> pacer_class(m, "Pacer");
    PyObject *enqueue_size =
        PyDescr_NewMethod(reinterpret_cast<PyTypeObject *>(pacer_class.ptr()), &kEnqueueSize);
    if (!enqueue_size) throw py::error_already_set();
    py::setattr(pacer_class, "enqueue_size", py::reinterpret_steal<py::object>(enqueue_size));
    pacer_class
        .def(py::init([](std::int64_t target_bitrate, std::int64_t now_us, double pacing_factor,
                         std::int64_t burst_us, std::int64_t queue_time_limit_us,
                         std::array<std::size_t, kNumClasses> max_packets) {
                 return Pacer(target_bitrate, now_us,
                              MakeConfig(pacing_factor, burst_us, queue_time_limit_us,
                                         max_packets));
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
        // For a caller keeping the packets (PacedSender): no bytes cross into C++ or back.
        // A frame's packets in one call: one crossing, one drain and one rate update for all.
        .def("enqueue_sizes",
             [](Pacer &p, py::handle sizes, int packet_class, std::int64_t now_us) {
                 PacketClass c = ToClass(packet_class);
                 py::object seq = py::reinterpret_steal<py::object>(
                     PySequence_Fast(sizes.ptr(), "sizes must be a sequence of ints"));
                 if (!seq) throw py::error_already_set();
                 Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
                 PyObject **items = PySequence_Fast_ITEMS(seq.ptr());
                 std::vector<std::size_t> checked(static_cast<std::size_t>(n));
                 for (Py_ssize_t i = 0; i < n; ++i) {
                     // All checked before any is queued: a bad size queues nothing.
                     checked[static_cast<std::size_t>(i)] = CheckedSize(items[i]);
                 }
                 return p.EnqueueSizes(checked.data(), checked.size(), c, now_us);
             },
             py::arg("sizes"), py::arg("packet_class"), py::arg("now_us"))
        .def("pop_due_classes",
             [](Pacer &p, std::int64_t now_us) {
                 // The C API directly: this runs once per released packet, and pybind11's
                 // generic casts cost more than the pacer's own decision.
                 py::list out(0);
                 while (auto r = p.Pop(now_us)) {
                     PyObject *item = PyTuple_New(2);
                     if (!item) throw py::error_already_set();
                     PyTuple_SET_ITEM(item, 0, PyLong_FromLong(static_cast<long>(r->packet_class)));
                     PyTuple_SET_ITEM(item, 1, PyLong_FromLongLong(r->due_us));
                     if (!PyTuple_GET_ITEM(item, 1) || PyList_Append(out.ptr(), item) != 0) {
                         Py_DECREF(item);
                         throw py::error_already_set();
                     }
                     Py_DECREF(item);
                 }
                 return out;
             },
             py::arg("now_us"))
        .def("send_now",
             [](Pacer &p, std::int64_t size, std::int64_t now_us) {
                 return p.SendNow(CheckSize(size), now_us);
             },
             py::arg("size"), py::arg("now_us"),
             "True when nothing is queued and a packet of `size` bytes fits the budget now: it "
             "is counted as sent. False: nothing counted; queue it (or send it unpaced).")
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

    m.def("monotonic_us", &MonotonicMicros,
          "The native clock in microseconds (CLOCK_MONOTONIC on Linux, as time.monotonic()).");

    m.def("wake_cpu",
          [](std::int64_t period_us, std::int64_t count, const std::string &method,
             std::int64_t slack_ns, std::intptr_t fd, std::size_t packets, std::size_t size) {
              WakeCost cost;
              {
                  py::gil_scoped_release unlocked;
                  cost = WakeCpu(period_us, count, method, slack_ns, fd, packets, size);
              }
              return py::make_tuple(cost.cpu_s, cost.mean_late_us);
          },
          py::arg("period_us"), py::arg("count"), py::arg("method") = "condvar",
          py::arg("slack_ns") = 0, py::kw_only(), py::arg("fd") = -1, py::arg("packets") = 0,
          py::arg("size") = 1200,
          "(CPU seconds, mean lateness in us) of a native thread sleeping until `count` "
          "deadlines `period_us` apart by `method`, and with `fd` sending `packets` zero packets "
          "of `size` bytes on it at each (benchmarks/pacer_cpu.py).");
    m.def("send_cpu",
          [](std::intptr_t fd, std::size_t size, std::size_t count, std::size_t batch) {
              return SendCpu(fd, size, count, batch);
          },
          py::arg("fd"), py::arg("size"), py::arg("count"), py::arg("batch"),
          py::call_guard<py::gil_scoped_release>(),
          "CPU seconds of this thread to send `count` zero packets of `size` bytes on a connected "
          "datagram socket as SocketSender does, `batch` per sendmmsg, unpaced.");

    py::class_<SocketSender>(m, "SocketSender")
        .def(py::init([](std::intptr_t fd, std::int64_t target_bitrate, double pacing_factor,
                         std::int64_t burst_us, std::int64_t queue_time_limit_us,
                         std::array<std::size_t, kNumClasses> max_packets,
                         std::int64_t tolerance_us, bool record) {
                 return std::make_unique<SocketSender>(
                     fd, target_bitrate,
                     MakeConfig(pacing_factor, burst_us, queue_time_limit_us, max_packets),
                     tolerance_us, record);
             }),
             py::arg("fd"), py::arg("target_bitrate"), py::kw_only(),
             py::arg("pacing_factor") = Config().pacing_factor,
             py::arg("burst_us") = Config().burst_us,
             py::arg("queue_time_limit_us") = Config().queue_time_limit_us,
             py::arg("max_packets") = Config().max_packets, py::arg("tolerance_us") = 500,
             py::arg("record") = false)
        .def("start", &SocketSender::Start)
        .def("stop", &SocketSender::Stop, py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("running", &SocketSender::running)
        .def("set_target_bitrate", &SocketSender::SetTargetBitrate, py::arg("target_bitrate"))
        .def("enqueue",
             [](SocketSender &s, py::handle data, int packet_class) {
                 std::vector<std::string> one;
                 one.push_back(ToString(data));
                 return s.EnqueueMany(std::move(one), ToClass(packet_class)) != 0;
             },
             py::arg("data"), py::arg("packet_class"))
        // A keyframe's packets in one call: one crossing into C++ and one lock for all of them.
        .def("enqueue_many",
             [](SocketSender &s, py::iterable packets, int packet_class) {
                 PacketClass c = ToClass(packet_class);
                 std::vector<std::string> copies;
                 for (py::handle data : packets) copies.push_back(ToString(data));
                 return s.EnqueueMany(std::move(copies), c);
             },
             py::arg("packets"), py::arg("packet_class"))
        .def_property_readonly("target_bitrate", &SocketSender::target_bitrate_bps)
        .def_property_readonly("pacing_rate", &SocketSender::pacing_rate_bps)
        .def_property_readonly("queued_bytes", &SocketSender::queued_bytes)
        .def_property_readonly("sent_packets", &SocketSender::sent_packets)
        .def_property_readonly("send_errors", &SocketSender::send_errors)
        .def_property_readonly("wakeups", &SocketSender::wakeups)
        .def("queued_packets",
             [](const SocketSender &s, std::optional<int> c) {
                 return c ? s.queued_packets(ToClass(*c)) : s.queued_packets();
             },
             py::arg("packet_class") = py::none())
        .def("dropped_packets",
             [](const SocketSender &s, int c) { return s.dropped_packets(ToClass(c)); },
             py::arg("packet_class"))
        .def("take_log", [](SocketSender &s) {
            py::list out;
            for (const Release &r : s.TakeLog()) {
                out.append(py::make_tuple(r.due_us, r.sent_us, static_cast<int>(r.packet_class),
                                          r.size));
            }
            return out;
        });
}
