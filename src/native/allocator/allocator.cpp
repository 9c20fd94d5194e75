#include "allocator/allocator.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace rtcroom::allocator {
namespace {

constexpr const char *kPriorityNames[] = {"low", "standard", "high"};

[[noreturn]] void invalid(const std::string &field, const std::string &what) {
    throw std::invalid_argument(field + " " + what);
}

std::string quoted(const std::string &s) { return "'" + s + "'"; }

}  // namespace

Mode parse_mode(const std::string &name) {
    if (name == "grid") return Mode::grid;
    if (name == "collaboration") return Mode::collaboration;
    if (name == "presentation") return Mode::presentation;
    throw std::invalid_argument("must be one of grid, collaboration, presentation; got " +
                                quoted(name));
}

SwitchOffMode parse_switch_off_mode(const std::string &name) {
    if (name == "predicted") return SwitchOffMode::predicted;
    if (name == "detected") return SwitchOffMode::detected;
    if (name == "disabled") return SwitchOffMode::disabled;
    throw std::invalid_argument("must be one of detected, predicted, disabled; got " +
                                quoted(name));
}

Priority parse_priority(const std::string &name) {
    for (int p = 0; p < 3; ++p) {
        if (name == kPriorityNames[p]) return static_cast<Priority>(p);
    }
    throw std::invalid_argument("must be one of low, standard, high; got " + quoted(name));
}

const char *reason_name(Reason reason) {
    switch (reason) {
        case Reason::none: return "";
        case Reason::subscriber: return "subscriber";
        case Reason::max_tracks: return "max_tracks";
        case Reason::bandwidth: return "bandwidth";
        case Reason::max_subscription_bitrate: return "max_subscription_bitrate";
    }
    return "";
}

std::string field_name(bool name_subscribers, size_t subscriber, const std::string &field) {
    if (!name_subscribers) return field;
    return "subscriptions[" + std::to_string(subscriber) + "]." + field;
}

BandwidthAllocator::BandwidthAllocator(const std::vector<Subscriber> &subscribers,
                                       bool name_subscribers) {
    first_track_.push_back(0);
    for (size_t s = 0; s < subscribers.size(); ++s) {
        auto field = [&](const std::string &f) { return field_name(name_subscribers, s, f); };
        const Profile &profile = subscribers[s].profile;
        const auto &cap = profile.max_subscription_bitrate;
        if (cap && *cap < 0) {
            invalid(field("profile.max_subscription_bitrate"),
                    "must be non-negative or None, got " + std::to_string(*cap));
        }
        for (int p = 0; p < 3; ++p) {
            const Dimensions &d = profile.render_dimensions[p];
            std::string name = std::string("profile.render_dimensions.") + kPriorityNames[p];
            if (d.width > kMaxRenderSide) {
                invalid(field(name + ".width"), "must be at most " + std::to_string(kMaxRenderSide) +
                                                     ", got " + std::to_string(d.width));
            }
            if (d.height > kMaxRenderSide) {
                invalid(field(name + ".height"), "must be at most " + std::to_string(kMaxRenderSide) +
                                                      ", got " + std::to_string(d.height));
            }
        }
        plans_.push_back({profile.mode, profile.track_switch_off_mode, cap ? *cap : -1,
                          profile.max_tracks});

        const auto &tracks = subscribers[s].tracks;
        const uint32_t begin = static_cast<uint32_t>(track_ids_.size());
        std::unordered_map<std::string, size_t> seen;
        for (size_t j = 0; j < tracks.size(); ++j) {
            const Track &track = tracks[j];
            // Field names are built only for the message of a bad input.
            auto tfield = [&](const std::string &rest) {
                return field("tracks[" + std::to_string(j) + "]" + rest);
            };
            auto lfield = [&](size_t k, const std::string &rest) {
                return tfield(".layers[" + std::to_string(k) + "]" + rest);
            };
            if (track.id.empty()) invalid(tfield(".track_id"), "must not be empty");
            auto [it, inserted] = seen.emplace(track.id, j);
            if (!inserted) {
                invalid(tfield(".track_id"),
                        quoted(track.id) + " duplicates tracks[" + std::to_string(it->second) + "]");
            }
            if (track.layers.empty()) invalid(tfield(".layers"), "must not be empty");
            for (size_t k = 0; k < track.layers.size(); ++k) {
                const Layer &l = track.layers[k];
                if (l.bitrate < 1 || l.bitrate > kMaxLayerBitrate) {
                    invalid(lfield(k, ".bitrate"), "must be 1.." + std::to_string(kMaxLayerBitrate) +
                                                       " bps, got " + std::to_string(l.bitrate));
                }
                if (l.width < 1) invalid(lfield(k, ".width"), "must be positive, got " + std::to_string(l.width));
                if (l.height < 1) invalid(lfield(k, ".height"), "must be positive, got " + std::to_string(l.height));
                if (k == 0) continue;
                const Layer &below = track.layers[k - 1];
                if (l.bitrate <= below.bitrate) {
                    invalid(lfield(k, ".bitrate"),
                            "must be greater than the layer below's (" + std::to_string(below.bitrate) +
                                "): layers go from lowest to highest, got " + std::to_string(l.bitrate));
                }
                if (l.width < below.width || l.height < below.height) {
                    invalid(lfield(k, ""), "must not be smaller than the layer below (" +
                                               std::to_string(below.width) + "x" + std::to_string(below.height) +
                                               "), got " + std::to_string(l.width) + "x" + std::to_string(l.height));
                }
            }

            const Priority effective = track.dominant_speaker
                                           ? std::max(track.priority, profile.dominant_speaker_priority)
                                           : track.priority;
            const Dimensions render = profile.render_dimensions[static_cast<int>(effective)];
            const int32_t count = static_cast<int32_t>(track.layers.size());
            // The layer fills the render box without upscaling once either side reaches the box
            // (the video is fitted into the box keeping its aspect ratio).
            int32_t target = count - 1;
            for (int32_t k = 0; k < count; ++k) {
                if (track.layers[k].width >= render.width || track.layers[k].height >= render.height) {
                    target = k;
                    break;
                }
            }
            track_ids_.push_back(track.id);
            track_layers_.push_back({static_cast<uint32_t>(layer_bitrate_.size()), count});
            for (const Layer &l : track.layers) layer_bitrate_.push_back(l.bitrate);
            switched_off_.push_back(track.switched_off);
            effective_priority_.push_back(static_cast<uint8_t>(effective));
            target_layer_.push_back(target);
            weight_.push_back(profile.mode == Mode::grid
                                  ? 1
                                  : std::max<int64_t>(render.width, 1) * std::max<int64_t>(render.height, 1));
        }
        const uint32_t end = static_cast<uint32_t>(track_ids_.size());
        for (uint32_t t = begin; t < end; ++t) order_.push_back(t);
        std::stable_sort(order_.begin() + begin, order_.end(), [&](uint32_t a, uint32_t b) {
            if (effective_priority_[a] != effective_priority_[b]) {
                return effective_priority_[a] > effective_priority_[b];
            }
            return tracks[a - begin].dominant_speaker && !tracks[b - begin].dominant_speaker;
        });
        first_track_.push_back(end);
    }
}

void BandwidthAllocator::allocate(const Conditions *conditions, const int32_t *previous,
                                  Columns out) const {
    const bool many = subscriber_count() > 1;
    for (size_t s = 0; s < subscriber_count(); ++s) {
        if (conditions[s].available_bitrate < 0) {
            std::string name = many ? "available_bitrate[" + std::to_string(s) + "]" : "available_bitrate";
            invalid(name, "must be non-negative, got " + std::to_string(conditions[s].available_bitrate));
        }
    }
    if (previous) {
        for (size_t t = 0; t < track_count(); ++t) {
            if (previous[t] < kUnknown) {
                invalid("previous layer of track " + quoted(track_ids_[t]),
                        "must be a layer index, off or unknown, got " + std::to_string(previous[t]));
            }
        }
    }
    for (size_t s = 0; s < subscriber_count(); ++s) allocate_one(s, conditions[s], previous, out);
}

void BandwidthAllocator::allocate_one(size_t s, const Conditions &c, const int32_t *previous,
                                      Columns out) const {
    const SubscriberPlan &plan = plans_[s];
    const uint32_t begin = first_track_[s];
    const uint32_t end = first_track_[s + 1];

    int64_t budget = c.available_bitrate;
    Reason limit = Reason::bandwidth;
    if (plan.max_subscription_bitrate >= 0 && plan.max_subscription_bitrate < budget) {
        budget = plan.max_subscription_bitrate;
        limit = Reason::max_subscription_bitrate;
    }
    const int64_t margin = budget / kHysteresisDivisor;
    auto prev = [&](uint32_t t) { return previous ? previous[t] : kUnknown; };
    auto base = [&](uint32_t t) { return layer_bitrate_[track_layers_[t].first]; };

    // Off by the subscriber's own choices first; what the switch-off mode forbids switching off
    // is on at its lowest layer before anything else is considered, even past the budget.
    const bool keep_all = plan.switch_off_mode == SwitchOffMode::disabled;
    const bool keep_on = plan.switch_off_mode == SwitchOffMode::detected && !c.congestion;
    int64_t candidates = 0;
    int64_t allocated = 0;
    for (uint32_t i = begin; i < end; ++i) {
        const uint32_t t = order_[i];
        out.layer[t] = kOff;
        out.reason[t] = static_cast<uint8_t>(Reason::none);
        if (switched_off_[t]) {
            out.reason[t] = static_cast<uint8_t>(Reason::subscriber);
        } else if (plan.max_tracks > 0 && candidates >= plan.max_tracks) {
            out.reason[t] = static_cast<uint8_t>(Reason::max_tracks);
        } else {
            ++candidates;
            if (keep_all || (keep_on && prev(t) >= 0)) {
                out.layer[t] = 0;
                allocated += base(t);
            }
        }
    }

    // Presentation serves one priority at a time, up to its targets, before the next one sees
    // any bandwidth; the other modes switch on every track they can before raising any layer.
    for (uint32_t group = begin; group < end;) {
        uint32_t group_end = end;
        if (plan.mode == Mode::presentation) {
            group_end = group + 1;
            while (group_end < end &&
                   effective_priority_[order_[group_end]] == effective_priority_[order_[group]]) {
                ++group_end;
            }
        }
        for (uint32_t i = group; i < group_end; ++i) {
            const uint32_t t = order_[i];
            // Decided already: kept on, or off by the subscriber's choices.
            if (out.layer[t] != kOff || out.reason[t] != static_cast<uint8_t>(Reason::none)) continue;
            const int64_t room = budget - allocated - (prev(t) == kOff ? margin : 0);
            if (base(t) <= room) {
                out.layer[t] = 0;
                allocated += base(t);
            } else {
                out.reason[t] = static_cast<uint8_t>(limit);
            }
        }
        fill_layers(group, group_end, budget, margin, allocated, previous, out.layer);
        group = group_end;
    }

    int64_t total = 0;
    for (uint32_t t = begin; t < end; ++t) {
        if (out.layer[t] == kOff) {
            out.bitrate[t] = 0;
            continue;
        }
        out.bitrate[t] = layer_bitrate_[track_layers_[t].first + out.layer[t]];
        total += out.bitrate[t];
        if (out.layer[t] < target_layer_[t]) out.reason[t] = static_cast<uint8_t>(limit);
    }
    out.total[s] = total;
    out.overshoot[s] = std::max<int64_t>(total - budget, 0);
}

// Raises layers one step at a time, always for the on track with the smallest bitrate per unit
// of weight whose next step fits (most important first on ties), until no step fits: a
// water-filling of the budget in proportion to the weights, in whole layers.
void BandwidthAllocator::fill_layers(uint32_t begin, uint32_t end, int64_t budget, int64_t margin,
                                     int64_t &allocated, const int32_t *previous,
                                     int32_t *layer) const {
    for (;;) {
        uint32_t best = 0;
        int64_t best_rate = -1, best_weight = 1, best_cost = 0;
        for (uint32_t i = begin; i < end; ++i) {
            const uint32_t t = order_[i];
            const int32_t l = layer[t];
            if (l < 0 || l >= target_layer_[t]) continue;
            const int64_t *rates = &layer_bitrate_[track_layers_[t].first];
            const int64_t cost = rates[l + 1] - rates[l];
            int32_t before = previous ? std::min(previous[t], track_layers_[t].count - 1) : kUnknown;
            const bool above_previous = before != kUnknown && l + 1 > before;
            if (cost > budget - allocated - (above_previous ? margin : 0)) continue;
            if (best_rate < 0 || rates[l] * best_weight < best_rate * weight_[t]) {
                best = t;
                best_rate = rates[l];
                best_weight = weight_[t];
                best_cost = cost;
            }
        }
        if (best_rate < 0) return;
        ++layer[best];
        allocated += best_cost;
    }
}

}  // namespace rtcroom::allocator
