// The allocator core on its own, without Python: a text driver for tests/test_allocator_cpp.py,
// which builds it with the system C++ compiler to show the core needs nothing but the standard
// library.
//
// stdin, one subscriber:
//   mode switch_off_mode cap(-1: none) max_tracks dominant_speaker_priority lw lh sw sh hw hh
//   available_bitrate congestion(0/1) track_count
//   per track: id priority dominant(0/1) switched_off(0/1) previous(-2 unknown, -1 off, layer)
//              layer_count, then bitrate width height per layer
// stdout: one line per track "layer bitrate reason" (reason "-" for none), then "total overshoot".
#include <iostream>
#include <stdexcept>

#include "allocator/allocator.h"

using namespace rtcroom::allocator;

int main() {
    std::string mode, switch_off, ds;
    int64_t cap, max_tracks;
    Subscriber sub;
    Profile &p = sub.profile;
    std::cin >> mode >> switch_off >> cap >> max_tracks >> ds;
    p.mode = parse_mode(mode);
    p.track_switch_off_mode = parse_switch_off_mode(switch_off);
    if (cap >= 0) p.max_subscription_bitrate = cap;
    p.max_tracks = max_tracks;
    p.dominant_speaker_priority = parse_priority(ds);
    for (auto &d : p.render_dimensions) std::cin >> d.width >> d.height;
    Conditions c;
    int congestion;
    size_t n;
    std::cin >> c.available_bitrate >> congestion >> n;
    c.congestion = congestion != 0;
    std::vector<int32_t> previous(n);
    for (size_t j = 0; j < n; ++j) {
        Track t;
        std::string priority;
        int dominant, off;
        size_t layers;
        std::cin >> t.id >> priority >> dominant >> off >> previous[j] >> layers;
        t.priority = parse_priority(priority);
        t.dominant_speaker = dominant != 0;
        t.switched_off = off != 0;
        t.layers.resize(layers);
        for (auto &l : t.layers) std::cin >> l.bitrate >> l.width >> l.height;
        sub.tracks.push_back(std::move(t));
    }
    try {
        BandwidthAllocator allocator({sub}, false);
        std::vector<int32_t> layer(n);
        std::vector<int64_t> bitrate(n);
        std::vector<uint8_t> reason(n);
        int64_t total, overshoot;
        allocator.allocate(&c, previous.data(),
                           {layer.data(), bitrate.data(), reason.data(), &total, &overshoot});
        for (size_t j = 0; j < n; ++j) {
            const char *why = reason_name(static_cast<Reason>(reason[j]));
            std::cout << layer[j] << ' ' << bitrate[j] << ' ' << (*why ? why : "-") << '\n';
        }
        std::cout << total << ' ' << overshoot << '\n';
    } catch (const std::invalid_argument &e) {
        std::cout << "error " << e.what() << '\n';
    }
}
