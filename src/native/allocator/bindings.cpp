#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "allocator/allocator.h"

namespace py = pybind11;
using namespace rtcroom::allocator;

namespace {

// Plain data in: nested tuples and lists of str / int / bool / None. A value of the wrong type
// is a ValueError naming the field, like every other bad input. `name` builds the field's name,
// only when there is an error to report.
template <typename T, typename Name>
T get(py::handle h, const Name &name) {
    try {
        return h.cast<T>();
    } catch (const py::cast_error &) {
        throw std::invalid_argument(name() + " has the wrong type: " +
                                    std::string(py::str(py::type::handle_of(h).attr("__name__"))) +
                                    " " + std::string(py::repr(h)));
    }
}

template <typename Name>
py::sequence items(py::handle h, size_t size, const Name &name) {
    if (!py::isinstance<py::sequence>(h) || py::isinstance<py::str>(h)) {
        throw std::invalid_argument(name() + " must be a sequence");
    }
    auto seq = py::reinterpret_borrow<py::sequence>(h);
    if (size && seq.size() != size) {
        throw std::invalid_argument(name() + " must have " + std::to_string(size) + " items");
    }
    return seq;
}

template <typename E, typename Name>
E parse(E (*parser)(const std::string &), py::handle h, const Name &name) {
    std::string value = get<std::string>(h, name);
    try {
        return parser(value);
    } catch (const std::invalid_argument &e) {
        throw std::invalid_argument(name() + " " + e.what());
    }
}

Subscriber subscriber(py::handle h, bool many, size_t s) {
    auto field = [&](const char *f) { return [=] { return field_name(many, s, f); }; };
    auto parts = items(h, 7, field("subscription"));
    Subscriber sub;
    Profile &p = sub.profile;
    p.mode = parse(parse_mode, parts[0], field("profile.mode"));
    p.track_switch_off_mode =
        parse(parse_switch_off_mode, parts[1], field("profile.track_switch_off_mode"));
    if (!parts[2].is_none()) {
        p.max_subscription_bitrate = get<int64_t>(parts[2], field("profile.max_subscription_bitrate"));
    }
    p.max_tracks = get<int64_t>(parts[3], field("profile.max_tracks"));
    p.dominant_speaker_priority =
        parse(parse_priority, parts[4], field("profile.dominant_speaker_priority"));
    auto render = items(parts[5], 6, field("profile.render_dimensions"));
    for (size_t i = 0; i < 3; ++i) {
        p.render_dimensions[i] = {get<int64_t>(render[2 * i], field("profile.render_dimensions")),
                                  get<int64_t>(render[2 * i + 1], field("profile.render_dimensions"))};
    }
    auto tracks = items(parts[6], 0, field("tracks"));
    sub.tracks.reserve(tracks.size());
    for (size_t j = 0; j < tracks.size(); ++j) {
        auto tfield = [&](const char *rest) {
            return [=] { return field_name(many, s, "tracks[" + std::to_string(j) + "]" + rest); };
        };
        auto t = items(tracks[j], 5, tfield(""));
        Track track;
        track.id = get<std::string>(t[0], tfield(".track_id"));
        track.priority = parse(parse_priority, t[1], tfield(".priority"));
        track.dominant_speaker = get<bool>(t[2], tfield(".dominant_speaker"));
        track.switched_off = get<bool>(t[3], tfield(".switched_off"));
        auto layers = items(t[4], 0, tfield(".layers"));
        track.layers.reserve(layers.size());
        for (size_t k = 0; k < layers.size(); ++k) {
            auto lfield = [&](const char *rest) {
                return [=] {
                    return field_name(many, s, "tracks[" + std::to_string(j) + "].layers[" +
                                                   std::to_string(k) + "]" + rest);
                };
            };
            auto l = items(layers[k], 3, lfield(""));
            track.layers.push_back({get<int64_t>(l[0], lfield(".bitrate")),
                                    get<int64_t>(l[1], lfield(".width")),
                                    get<int64_t>(l[2], lfield(".height"))});
        }
        sub.tracks.push_back(std::move(track));
    }
    return sub;
}

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

py::tuple allocate(const BandwidthAllocator &a, const carray<int64_t> &available,
                   const carray<bool> &congestion, const std::optional<carray<int32_t>> &previous) {
    const size_t n = a.subscriber_count();
    const size_t tracks = a.track_count();
    if (available.ndim() != 1 || static_cast<size_t>(available.size()) != n) {
        throw std::invalid_argument("available_bitrate must hold one value per subscriber (" +
                                    std::to_string(n) + ")");
    }
    if (congestion.ndim() != 1 || static_cast<size_t>(congestion.size()) != n) {
        throw std::invalid_argument("congestion must hold one value per subscriber (" +
                                    std::to_string(n) + ")");
    }
    if (previous && (previous->ndim() != 1 || static_cast<size_t>(previous->size()) != tracks)) {
        throw std::invalid_argument("previous must hold one layer per track (" +
                                    std::to_string(tracks) + ")");
    }
    std::vector<Conditions> conditions(n);
    for (size_t s = 0; s < n; ++s) conditions[s] = {available.data()[s], congestion.data()[s]};
    py::array_t<int32_t> layer(tracks);
    py::array_t<int64_t> bitrate(tracks);
    py::array_t<uint8_t> reason(tracks);
    py::array_t<int64_t> total(n);
    py::array_t<int64_t> overshoot(n);
    Columns out{layer.mutable_data(), bitrate.mutable_data(), reason.mutable_data(),
                total.mutable_data(), overshoot.mutable_data()};
    const int32_t *prev = previous ? previous->data() : nullptr;
    {
        py::gil_scoped_release release;
        a.allocate(conditions.data(), prev, out);
    }
    return py::make_tuple(layer, bitrate, reason, total, overshoot);
}

}  // namespace

PYBIND11_MODULE(allocator, m) {
    m.doc() = "Downlink bandwidth allocation for video subscribers; see rtcroom.bandwidth.";
    m.attr("OFF") = kOff;
    m.attr("UNKNOWN") = kUnknown;
    m.attr("HYSTERESIS_DIVISOR") = kHysteresisDivisor;
    py::list reasons;
    for (auto r : {Reason::none, Reason::subscriber, Reason::max_tracks, Reason::bandwidth,
                   Reason::max_subscription_bitrate}) {
        reasons.append(reason_name(r));
    }
    m.attr("REASONS") = py::tuple(reasons);

    py::class_<BandwidthAllocator>(m, "Plan")
        .def(py::init([](py::sequence subscriptions, bool many) {
                 std::vector<Subscriber> subs;
                 subs.reserve(subscriptions.size());
                 for (size_t s = 0; s < subscriptions.size(); ++s) {
                     subs.push_back(subscriber(subscriptions[s], many, s));
                 }
                 return BandwidthAllocator(subs, many);
             }),
             py::arg("subscriptions"), py::arg("name_subscribers"))
        .def_property_readonly("subscriber_count", &BandwidthAllocator::subscriber_count)
        .def_property_readonly("track_count", &BandwidthAllocator::track_count)
        .def_property_readonly("first_tracks",
                               [](const BandwidthAllocator &a) {
                                   py::array_t<int64_t> first(a.subscriber_count() + 1);
                                   for (size_t s = 0; s <= a.subscriber_count(); ++s) {
                                       first.mutable_data()[s] = static_cast<int64_t>(a.first_track(s));
                                   }
                                   return first;
                               })
        .def("allocate", &allocate, py::arg("available_bitrate"), py::arg("congestion"),
             py::arg("previous"));
}
