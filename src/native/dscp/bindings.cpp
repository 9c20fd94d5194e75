#include <pybind11/pybind11.h>

#include "dscp/dscp.h"

namespace py = pybind11;
using namespace rtcroom::dscp;

PYBIND11_MODULE(dscp, m) {
    m.doc() = "Traffic class (DSCP) socket options by descriptor; see rtcroom.dscp.";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const SocketError &e) {
            py::object err = py::module_::import("builtins").attr("OSError")(e.err, e.what());
            PyErr_SetObject(PyExc_OSError, err.ptr());
        }
    });
    // Socket calls are short system calls; the GIL is released anyway so a slow kernel path
    // never stalls the event loop's other threads.
    m.def("socket_family", &socket_family, py::arg("fd"), py::call_guard<py::gil_scoped_release>());
    m.def("set_traffic_class", &set_traffic_class, py::arg("fd"), py::arg("traffic_class"),
          py::call_guard<py::gil_scoped_release>());
    m.def("get_traffic_class", &get_traffic_class, py::arg("fd"),
          py::call_guard<py::gil_scoped_release>());
    // 0 sent, 1 would block, 2 unsupported (SendResult). The bytes are read in place: no copy.
    m.def(
        "send_marked",
        [](std::intptr_t fd, py::buffer data, const std::string &host, int port,
           int traffic_class) {
            py::buffer_info info = data.request();
            if (info.ndim != 1 || info.itemsize != 1 || info.strides[0] != 1) {
                throw py::type_error("data must be a contiguous bytes-like object");
            }
            py::gil_scoped_release release;
            return static_cast<int>(send_marked(fd, info.ptr, static_cast<std::size_t>(info.size),
                                                host, port, traffic_class));
        },
        py::arg("fd"), py::arg("data"), py::arg("host"), py::arg("port"),
        py::arg("traffic_class"));
}
