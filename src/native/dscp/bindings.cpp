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
}
