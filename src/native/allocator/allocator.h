// Downlink bandwidth allocation for video subscribers: which subscribed tracks are on, at which
// simulcast layer, and why. The rules are documented in rtcroom/bandwidth.py; tests/
// reference_allocator.py is the same rules in plain Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rtcroom::allocator {

enum class Mode : uint8_t { grid, collaboration, presentation };
enum class SwitchOffMode : uint8_t { predicted, detected, disabled };
enum class Priority : uint8_t { low, standard, high };
enum class Reason : uint8_t { none, subscriber, max_tracks, bandwidth, max_subscription_bitrate };

// Values of a track's previous layer besides a layer index.
constexpr int32_t kOff = -1;      // the track was off
constexpr int32_t kUnknown = -2;  // no previous decision (new subscription, first allocation)

// Bitrates are bounded so that a bitrate times a render area (the collaboration share weight)
// stays inside int64.
constexpr int64_t kMaxLayerBitrate = 10'000'000'000;  // 10 Gbps
constexpr int64_t kMaxRenderSide = 16384;
// A track that was off comes on, and a layer above the previous one is chosen, only when that
// leaves budget / kHysteresisDivisor unused: 10 %.
constexpr int64_t kHysteresisDivisor = 10;

struct Layer {
    int64_t bitrate = 0;
    int64_t width = 0;
    int64_t height = 0;
};

struct Dimensions {
    int64_t width = 0;
    int64_t height = 0;
};

struct Track {
    std::string id;
    Priority priority = Priority::standard;  // the subscriber's override, else the publisher's
    bool dominant_speaker = false;
    bool switched_off = false;  // by the subscriber
    std::vector<Layer> layers;  // lowest first; one layer when not simulcast
};

struct Profile {
    Mode mode = Mode::grid;
    SwitchOffMode track_switch_off_mode = SwitchOffMode::predicted;
    std::optional<int64_t> max_subscription_bitrate;  // none: no cap
    int64_t max_tracks = 0;                 // <= 0: no limit
    Priority dominant_speaker_priority = Priority::standard;
    Dimensions render_dimensions[3] = {{176, 144}, {640, 480}, {1280, 720}};  // by Priority
};

struct Subscriber {
    Profile profile;
    std::vector<Track> tracks;  // in subscription order
};

// The reference's names ("grid", "detected", "high", ...). Throw std::invalid_argument saying
// what the accepted names are; the caller prefixes the field.
Mode parse_mode(const std::string &name);
SwitchOffMode parse_switch_off_mode(const std::string &name);
Priority parse_priority(const std::string &name);
const char *reason_name(Reason reason);  // "bandwidth", ...; "" for Reason::none

// How errors name a field: "tracks[2].priority", or "subscriptions[4].tracks[2].priority" in a
// plan of many subscribers.
std::string field_name(bool name_subscribers, size_t subscriber, const std::string &field);

// Per-subscriber inputs that change between allocations.
struct Conditions {
    int64_t available_bitrate = 0;  // the downlink estimate, bps
    bool congestion = false;        // loss or delay growth detected on the downlink
};

// Output columns, one entry per track of every subscriber (subscribers one after the other),
// and per subscriber.
struct Columns {
    int32_t *layer;      // index into the track's layers, or kOff
    int64_t *bitrate;    // the chosen layer's bitrate, 0 when off
    uint8_t *reason;     // Reason: why off, or why below the layer its render dimensions ask for
    int64_t *total;      // per subscriber: sum of bitrate
    int64_t *overshoot;  // per subscriber: total above the budget (disabled / detected modes)
};

// Allocates for a fixed set of subscribers and their tracks (a "plan"), as often as the
// conditions change. Construction validates everything (std::invalid_argument naming the field)
// and precomputes what does not depend on the estimate; allocate() is then allocation-free.
class BandwidthAllocator {
public:
    // `name_subscribers` prefixes error messages with "subscriptions[i]." (batch plans).
    BandwidthAllocator(const std::vector<Subscriber> &subscribers, bool name_subscribers);

    size_t subscriber_count() const { return first_track_.size() - 1; }
    size_t track_count() const { return track_layers_.size(); }
    // Tracks of subscriber s are [first_track(s), first_track(s + 1)).
    size_t first_track(size_t s) const { return first_track_[s]; }

    // Const and free of shared state: many threads may allocate on one plan at once.
    // conditions: one per subscriber; previous: null (no previous allocation) or one per track
    // (layer, kOff or kUnknown; a layer index past the track's layers means its top layer). Throws std::invalid_argument for a
    // negative estimate or a previous value below kUnknown.
    void allocate(const Conditions *conditions, const int32_t *previous, Columns out) const;

private:
    struct LayerRange {
        uint32_t first;
        int32_t count;
    };
    struct SubscriberPlan {
        Mode mode;
        SwitchOffMode switch_off_mode;
        int64_t max_subscription_bitrate;  // < 0: no cap
        int64_t max_tracks;                // <= 0: no limit
    };

    void allocate_one(size_t s, const Conditions &c, const int32_t *previous, Columns out) const;
    void fill_layers(uint32_t begin, uint32_t end, int64_t budget, int64_t margin,
                     int64_t &allocated, const int32_t *previous, int32_t *layer) const;

    std::vector<SubscriberPlan> plans_;
    std::vector<uint32_t> first_track_;  // subscriber_count() + 1 entries
    std::vector<std::string> track_ids_;
    std::vector<LayerRange> track_layers_;
    std::vector<int64_t> layer_bitrate_;
    // Per track, fixed by the plan.
    std::vector<uint8_t> switched_off_;
    std::vector<uint8_t> effective_priority_;
    std::vector<int32_t> target_layer_;  // smallest layer that fills its render dimensions
    std::vector<int64_t> weight_;        // share weight: 1 in grid, render area otherwise
    // Per subscriber, its track indices most important first: priority, then the dominant
    // speaker, then subscription order. Stored globally, in the subscriber's own range.
    std::vector<uint32_t> order_;
};

}  // namespace rtcroom::allocator
